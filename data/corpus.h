// data/corpus.h — the text formats data/prepare reads besides plain text:
// the tagged Brown Corpus and WikiText's articles.
#ifndef CORPUS_H
#define CORPUS_H

#include <stddef.h>

// Remove Brown Corpus part-of-speech tags. The tagged form has one sentence a
// line, indented by a tab, each word written word/tag (the tag follows the
// last '/': "1-1/2/cd" is the word "1-1/2"). Blank lines are dropped, the
// indent removed, every tag cut off and the separators kept:
//   "\tThe/at jury/nn said/vbd ./.\n"  ->  "The jury said .\n"
// out needs room for n bytes; returns the number of bytes written.
size_t brown_detag(const char *in, size_t n, char *out);

// Whether line[0..n) (without its newline) is a WikiText article title,
// " = Title = " with exactly one '=' each side; " = = Section = = " is not.
int wikitext_is_title(const char *line, size_t n);

// WikiText articles: the article that starts at text[start] (its title line,
// or any text before the first title) runs to the start of the next title
// line, which is returned; len when no complete title line follows. Titles
// follow a blank line: lines like " = 1 <unk> / s = " inside the text are
// display formulas, not titles (WikiText-2 test has two).
size_t wikitext_article_end(const char *text, size_t len, size_t start);

#endif
