// test/svg_check.h — a strict-enough XML well-formedness check for the SVG
// files plot.c writes: one root <svg>, balanced and properly nested tags,
// quoted attributes, no raw '<' or stray '&' in text or values.
#ifndef SVG_CHECK_H
#define SVG_CHECK_H

#include <ctype.h>
#include <stdio.h>
#include <string.h>

// An '&' must begin one of XML's five entities or a character reference.
static inline int svg_entity_ok(const char *p) {
    static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"};
    for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++)
        if (strncmp(p, ents[i], strlen(ents[i])) == 0) return 1;
    return 0;
}

// Returns 1 when text is a well-formed SVG document; else prints why, returns 0.
static inline int svg_well_formed(const char *text) {
    char stack[64][32];
    int depth = 0, roots = 0;
    const char *p = text;
    if (strncmp(p, "<?xml", 5) == 0) {
        p = strstr(p, "?>");
        if (!p) { printf("  svg: unterminated XML declaration\n"); return 0; }
        p += 2;
    }
    while (*p) {
        if (*p == '&' && !svg_entity_ok(p)) { printf("  svg: stray '&' at offset %ld\n", (long)(p - text)); return 0; }
        if (*p == '>') { printf("  svg: stray '>' at offset %ld\n", (long)(p - text)); return 0; }
        if (*p != '<') { p++; continue; }
        int closing = p[1] == '/';
        p += 1 + closing;
        char name[32];
        size_t n = 0;
        while (isalnum((unsigned char)*p) || *p == '-' || *p == ':') {
            if (n + 1 >= sizeof name) { printf("  svg: tag name too long\n"); return 0; }
            name[n++] = *p++;
        }
        name[n] = '\0';
        if (!n) { printf("  svg: '<' without a tag name at offset %ld\n", (long)(p - text)); return 0; }
        if (closing) {
            if (*p != '>') { printf("  svg: malformed </%s\n", name); return 0; }
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0) {
                printf("  svg: </%s> closes %s\n", name, depth ? stack[depth - 1] : "nothing");
                return 0;
            }
            depth--;
            p++;
            continue;
        }
        if (depth == 0 && (roots++ || strcmp(name, "svg") != 0)) { printf("  svg: root must be one <svg>, got <%s>\n", name); return 0; }
        for (;;) {  // attributes: name="value"
            while (isspace((unsigned char)*p)) p++;
            if (*p == '>' || (p[0] == '/' && p[1] == '>')) break;
            const char *an = p;
            while (isalnum((unsigned char)*p) || *p == '-' || *p == ':') p++;
            if (p == an || p[0] != '=' || p[1] != '"') { printf("  svg: bad attribute in <%s> at offset %ld\n", name, (long)(p - text)); return 0; }
            p += 2;
            for (; *p != '"'; p++) {
                if (!*p || *p == '<') { printf("  svg: unterminated attribute in <%s>\n", name); return 0; }
                if (*p == '&' && !svg_entity_ok(p)) { printf("  svg: stray '&' in an attribute of <%s>\n", name); return 0; }
            }
            p++;
        }
        if (*p == '/') { p += 2; continue; }  // self-closing
        if (depth == 64) { printf("  svg: nested too deep\n"); return 0; }
        strcpy(stack[depth++], name);
        p++;
    }
    if (depth) { printf("  svg: <%s> is never closed\n", stack[depth - 1]); return 0; }
    if (!roots) { printf("  svg: no <svg> element\n"); return 0; }
    return 1;
}

#endif
