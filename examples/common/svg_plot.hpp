// A line chart as a standalone SVG file: title, axes with "nice" ticks, axis labels, one series and
// optionally more (each in its own colour, named in a legend).
// What matplotlib's default figure of a loss curve shows, with no plotting dependency.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "text_file.hpp"

namespace examples {

struct Series {
    std::string name;
    std::vector<double> x;
    std::vector<double> y;
};

struct LineChart {
    std::string title;
    std::string x_label;
    std::string y_label;
    std::vector<double> x;
    std::vector<double> y;
    std::string name{};          // the first series' legend entry (a legend is drawn when `more` is not empty)
    std::vector<Series> more{};  // further series, drawn over the first
};

namespace detail {
// Tick positions at 1, 2 or 5 times a power of ten, about `target` of them across [lo, hi].
inline std::vector<double> nice_ticks(double lo, double hi, int target = 6) {
    if (!(hi > lo)) hi = lo + 1;
    const double raw = (hi - lo) / target;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double norm = raw / mag;
    const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    std::vector<double> ticks;
    for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(std::abs(t) < step * 1e-9 ? 0 : t);
    return ticks;
}
inline std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '&') out += "&amp;";
        else out += c;
    }
    return out;
}
}  // namespace detail

inline void write_svg(const std::string& path, const LineChart& chart) {
    const double width = 640, height = 480, left = 80, right = 24, top = 48, bottom = 64;
    const double plot_w = width - left - right, plot_h = height - top - bottom;
    std::vector<Series> series{{chart.name, chart.x, chart.y}};
    series.insert(series.end(), chart.more.begin(), chart.more.end());
    double x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;  // a loss curve reads best against zero
    bool any = false;
    for (const auto& s : series) {
        const auto n = std::min(s.x.size(), s.y.size());
        for (std::size_t i = 0; i < n; ++i) {
            x_lo = std::min(x_lo, s.x[i]);
            y_lo = std::min(y_lo, s.y[i]);
            x_hi = any ? std::max(x_hi, s.x[i]) : s.x[i];
            y_hi = any ? std::max(y_hi, s.y[i]) : s.y[i];
            any = true;
        }
    }
    const auto x_ticks = detail::nice_ticks(x_lo, x_hi), y_ticks = detail::nice_ticks(y_lo, y_hi * 1.05);
    x_lo = std::min(x_lo, x_ticks.front());
    x_hi = std::max(x_hi, x_ticks.back());
    y_hi = std::max(y_hi * 1.05, y_ticks.back());  // headroom above the curve
    auto px = [&](double v) { return left + (v - x_lo) / (x_hi - x_lo) * plot_w; };
    auto py = [&](double v) { return top + plot_h - (v - y_lo) / (y_hi - y_lo) * plot_h; };

    std::string svg = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
        "font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n"
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        width, height);
    svg += fmt::format("<text x=\"{}\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">{}</text>\n", left + plot_w / 2,
                       detail::escape(chart.title));
    for (double t : x_ticks) {
        svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#dddddd\"/>\n", px(t), top, top + plot_h);
        svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"black\"/>\n", px(t), top + plot_h, top + plot_h + 5);
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{:g}</text>\n", px(t), top + plot_h + 19, t);
    }
    for (double t : y_ticks) {
        svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#dddddd\"/>\n", left, py(t), left + plot_w);
        svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"black\"/>\n", left - 5, py(t), left);
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{:g}</text>\n", left - 8, py(t) + 4, t);
    }
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>\n", left, top, plot_w, plot_h);
    static constexpr const char* colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"};
    for (std::size_t k = 0; k < series.size(); ++k) {
        const auto& s = series[k];
        const char* colour = colours[k % std::size(colours)];
        std::string points;
        for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) points += fmt::format("{:.2f},{:.2f} ", px(s.x[i]), py(s.y[i]));
        svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" points=\"{}\"/>\n", colour, points);
        if (series.size() > 1) {  // the legend, top right inside the plot
            const double ly = top + 18 + 18 * static_cast<double>(k), lx = left + plot_w - 150;
            svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2.5\"/>\n", lx, ly - 4, lx + 24,
                               ly - 4, colour);
            svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", lx + 30, ly, detail::escape(s.name));
        }
    }
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n", left + plot_w / 2, height - 18,
                       detail::escape(chart.x_label));
    svg += fmt::format("<text transform=\"translate(22 {:.1f}) rotate(-90)\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
                       top + plot_h / 2, detail::escape(chart.y_label));
    svg += "</svg>\n";
    write_text_file(path, svg);
}

}  // namespace examples
