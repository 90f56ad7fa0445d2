// plot.h — SVG line plots and heatmaps, written as plain text (no libraries).
//
// SVG because it is text: a few fprintf calls give a figure that browsers and
// GitHub render, that diffs, and that a test can check for well-formedness.
#ifndef PLOT_H
#define PLOT_H

// One line of a line plot: n points (x[i], y[i]); points with a NaN
// coordinate are left out (e.g. steps without a validation loss). With lo
// and hi (else NULL), a translucent band from lo[i] to hi[i] under the line.
typedef struct {
    const char *label;
    const double *x, *y;
    int n;
    const double *lo, *hi;
} PlotSeries;

// Axes with "nice" ticks, labels, a legend and one colour per series.
// Exits with a message naming path when it cannot be written.
void plot_lines_svg(const char *path, const char *title, const char *xlabel, const char *ylabel,
                    const PlotSeries *series, int n_series);

// One heatmap panel: a rows×cols matrix (row-major) drawn as cells whose
// brightness maps [vmin, vmax] linearly (NaN cells are drawn grey).
typedef struct {
    const char *label;
    const double *values;
    int rows, cols;
    double vmin, vmax;
} PlotPanel;

// Panels side by side with a shared title, each with its label and range.
void plot_heatmaps_svg(const char *path, const char *title, const PlotPanel *panels, int n_panels);

// Tick positions for [lo, hi]: steps of 1, 2 or 5 × 10^k giving at most
// max_ticks ticks. Writes them to ticks and returns how many. Exposed for tests.
int plot_ticks(double lo, double hi, int max_ticks, double *ticks);

#endif
