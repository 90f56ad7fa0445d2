// data/corpus.c — Brown Corpus detagging and WikiText article splitting. See corpus.h.
#include "corpus.h"

#include <string.h>

size_t brown_detag(const char *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(in + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - in) : n;
        while (i < end && (in[i] == ' ' || in[i] == '\t' || in[i] == '\r')) i++;
        if (i < end) {
            // Copy each word up to its last '/', and each separator as it is.
            while (i < end) {
                size_t w = i, slash = end;
                while (i < end && in[i] != ' ') {
                    if (in[i] == '/') slash = i;
                    i++;
                }
                size_t stop = slash < i ? slash : i;
                memcpy(out + o, in + w, stop - w);
                o += stop - w;
                if (i < end) out[o++] = in[i++];
            }
            out[o++] = '\n';
        }
        i = end + 1;
    }
    return o;
}

int wikitext_is_title(const char *line, size_t n) {
    return n >= 7 && memcmp(line, " = ", 3) == 0 && memcmp(line + n - 3, " = ", 3) == 0 &&
           line[3] != '=' && line[n - 4] != '=';
}

static int is_blank(const char *line, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (line[i] != ' ' && line[i] != '\r') return 0;
    return 1;
}

size_t wikitext_article_end(const char *text, size_t len, size_t start) {
    int seen_title = 0, after_blank = 1;
    for (size_t i = start; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        if (!nl) break;   // an unfinished last line may still become a title
        size_t end = (size_t)(nl - text);
        if (after_blank && wikitext_is_title(text + i, end - i)) {
            if (seen_title) return i;
            seen_title = 1;
        }
        after_blank = is_blank(text + i, end - i);
        i = end + 1;
    }
    return len;
}
