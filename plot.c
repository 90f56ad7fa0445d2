// plot.c — SVG line plots and heatmaps. See plot.h.
#include "plot.h"
#include "common.h"

#include <math.h>

// Tableau's ten colours: distinct for most forms of colour blindness.
static const char *const COLOURS[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                      "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
#define N_COLOURS (int)(sizeof COLOURS / sizeof COLOURS[0])
// Past ten series the colours repeat with a different dash pattern.
static const char *const DASHES[] = {"", "6,3", "2,2", "8,3,2,3"};
#define N_DASHES (int)(sizeof DASHES / sizeof DASHES[0])

// Text content and attribute values with the five XML specials escaped.
static void put_text(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void text_at(FILE *f, double x, double y, const char *anchor, const char *extra, const char *s) {
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>", x, y, anchor, extra);
    put_text(f, s);
    fputs("</text>\n", f);
}

static FILE *svg_open(const char *path, int w, int h) {
    FILE *f = xfopen(path, "w");
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", w, h, w, h, w, h);
    return f;
}

static void svg_close(FILE *f, const char *path) {
    fputs("</svg>\n", f);
    xfclose(f, path);
}

int plot_ticks(double lo, double hi, int max_ticks, double *ticks) {
    if (!(hi > lo)) {  // a flat range still gets one labelled tick
        ticks[0] = lo;
        return 1;
    }
    double raw = (hi - lo) / (max_ticks > 1 ? max_ticks - 1 : 1);
    double mag = pow(10, floor(log10(raw)));
    static const double mult[] = {1, 2, 5, 10};
    double step = 10 * mag;
    for (int i = 0; i < 4; i++)
        if (mult[i] * mag >= raw) { step = mult[i] * mag; break; }
    int n = 0;
    for (double t = ceil(lo / step) * step; t <= hi + step * 1e-9 && n < max_ticks; t += step)
        ticks[n++] = fabs(t) < step * 1e-9 ? 0 : t;  // print 0, not -1e-17
    return n;
}

// Data range over every finite point of every series (axis index 0 = x, 1 = y).
static void data_range(const PlotSeries *s, int n_series, int axis, double *lo, double *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int k = 0; k < n_series; k++)
        for (int i = 0; i < s[k].n; i++) {
            if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i])) continue;
            double v = axis ? s[k].y[i] : s[k].x[i], vlo = v, vhi = v;
            if (axis && s[k].lo && isfinite(s[k].lo[i])) vlo = fmin(v, s[k].lo[i]);
            if (axis && s[k].hi && isfinite(s[k].hi[i])) vhi = fmax(v, s[k].hi[i]);
            *lo = vlo < *lo ? vlo : *lo;
            *hi = vhi > *hi ? vhi : *hi;
        }
    if (*lo > *hi) *lo = 0, *hi = 1;  // nothing to draw: an empty frame
    if (*lo == *hi) *lo -= 0.5, *hi += 0.5;
}

void plot_lines_svg(const char *path, const char *title, const char *xlabel, const char *ylabel,
                    const PlotSeries *series, int n_series) {
    const int W = 860, H = 500, left = 70, right = 230, top = 40, bottom = 55;
    const double pw = W - left - right, ph = H - top - bottom;
    double x0, x1, y0, y1;
    data_range(series, n_series, 0, &x0, &x1);
    data_range(series, n_series, 1, &y0, &y1);
    double pad = 0.05 * (y1 - y0);  // keep the curves off the frame
    y0 -= pad;
    y1 += pad;
#define PX(x) (left + ((x) - x0) / (x1 - x0) * pw)
#define PY(y) (top + (y1 - (y)) / (y1 - y0) * ph)
    FILE *f = svg_open(path, W, H);
    text_at(f, left + pw / 2, 24, "middle", " font-size=\"15\"", title);
    double ticks[16];
    char buf[64];
    int n = plot_ticks(x0, x1, 8, ticks);
    for (int i = 0; i < n; i++) {
        double x = PX(ticks[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", x, top, x, top + ph);
        snprintf(buf, sizeof buf, "%g", ticks[i]);
        text_at(f, x, top + ph + 16, "middle", "", buf);
    }
    n = plot_ticks(y0, y1, 8, ticks);
    for (int i = 0; i < n; i++) {
        double y = PY(ticks[i]);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", left, y, left + pw, y);
        snprintf(buf, sizeof buf, "%g", ticks[i]);
        text_at(f, left - 6, y + 4, "end", "", buf);
    }
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"black\"/>\n", left, top, pw, ph);
    text_at(f, left + pw / 2, H - 14, "middle", "", xlabel);
    snprintf(buf, sizeof buf, " transform=\"rotate(-90 18 %.1f)\"", top + ph / 2);
    text_at(f, 18, top + ph / 2, "middle", buf, ylabel);
    for (int k = 0; k < n_series; k++) {   // bands first, under every line
        if (!series[k].lo || !series[k].hi) continue;
        fprintf(f, "<polygon fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\" points=\"", COLOURS[k % N_COLOURS]);
        for (int i = 0; i < series[k].n; i++)
            if (isfinite(series[k].x[i]) && isfinite(series[k].hi[i])) fprintf(f, "%.1f,%.1f ", PX(series[k].x[i]), PY(series[k].hi[i]));
        for (int i = series[k].n - 1; i >= 0; i--)
            if (isfinite(series[k].x[i]) && isfinite(series[k].lo[i])) fprintf(f, "%.1f,%.1f ", PX(series[k].x[i]), PY(series[k].lo[i]));
        fputs("\"/>\n", f);
    }
    for (int k = 0; k < n_series; k++) {
        const char *colour = COLOURS[k % N_COLOURS], *dash = DASHES[k / N_COLOURS % N_DASHES];
        char style[96];
        snprintf(style, sizeof style, "fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"%s%s%s", colour,
                 dash[0] ? " stroke-dasharray=\"" : "", dash, dash[0] ? "\"" : "");
        fprintf(f, "<polyline %s points=\"", style);
        for (int i = 0; i < series[k].n; i++)
            if (isfinite(series[k].x[i]) && isfinite(series[k].y[i]))
                fprintf(f, "%.1f,%.1f ", PX(series[k].x[i]), PY(series[k].y[i]));
        fputs("\"/>\n", f);
        double ly = top + 10 + 18 * k;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" %s/>\n", left + pw + 12, ly, left + pw + 36, ly, style);
        text_at(f, left + pw + 42, ly + 4, "start", "", series[k].label);
    }
#undef PX
#undef PY
    svg_close(f, path);
}

void plot_heatmaps_svg(const char *path, const char *title, const PlotPanel *panels, int n_panels) {
    const int side = 320, gap = 40, top = 60, margin = 20;
    int W = margin * 2 + n_panels * side + (n_panels - 1) * gap, H = top + side + 30;
    FILE *f = svg_open(path, W, H);
    text_at(f, W / 2.0, 24, "middle", " font-size=\"15\"", title);
    for (int p = 0; p < n_panels; p++) {
        const PlotPanel *pn = &panels[p];
        double x0 = margin + p * (side + gap);
        int big = pn->rows > pn->cols ? pn->rows : pn->cols;
        double cell = (double)side / (big > 0 ? big : 1);
        text_at(f, x0 + side / 2.0, top - 10, "middle", "", pn->label);
        double span = pn->vmax > pn->vmin ? pn->vmax - pn->vmin : 1;
        for (int r = 0; r < pn->rows; r++)
            for (int c = 0; c < pn->cols; c++) {
                double v = pn->values[(size_t)r * pn->cols + c];
                char fill[16];
                if (isnan(v)) snprintf(fill, sizeof fill, "#cccccc");
                else {
                    double t = (v - pn->vmin) / span;
                    t = t < 0 ? 0 : t > 1 ? 1 : t;
                    if (t == 0) continue;  // the white background already shows it: smaller files
                    // white → dark blue
                    snprintf(fill, sizeof fill, "#%02x%02x%02x", (int)lround(255 - t * 247), (int)lround(255 - t * 207),
                             (int)lround(255 - t * 148));
                }
                fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>\n",
                        x0 + c * cell, top + r * cell, cell, cell, fill);
            }
        fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"black\"/>\n", x0, top, side, side);
        char range[96];
        snprintf(range, sizeof range, "white = %.3g, blue = %.3g", pn->vmin, pn->vmax);
        text_at(f, x0 + side / 2.0, top + side + 18, "middle", " font-size=\"11\"", range);
    }
    svg_close(f, path);
}
