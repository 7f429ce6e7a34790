//! SVG and PNG charts of the sweep: round trip and throughput against message size.
//!
//! Text is drawn by plotters' `ab_glyph` renderer with a TTF font bundled by a crate, so no
//! system font library (fontconfig, freetype) is needed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::{human_size, Report};

const SIZE: (u32, u32) = (1100, 700);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        )
        .is_err()
        {
            eprintln!("warning: the bundled font did not load; chart text may be missing");
        }
    });
}

struct Series {
    label: String,
    points: Vec<(f64, f64)>,
    limit: bool,
}

/// Writes `latency.{svg,png}` and `throughput.{svg,png}` into `dir`; returns the paths.
pub fn write_all(r: &Report, dir: &Path) -> Result<Vec<PathBuf>, String> {
    register_font();
    let sizes = &r.settings.sweep_sizes;
    let (lo, hi) = (
        *sizes.iter().min().unwrap_or(&8) as f64,
        *sizes.iter().max().unwrap_or(&(1 << 20)) as f64,
    );
    let x_span = (lo / 1.5, hi * 1.5);

    let mut lat: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for p in &r.sweep_latency {
        lat.entry(&p.transport)
            .or_default()
            .push((p.size as f64, p.rtt.p50_ns as f64 / 1e3));
    }
    let mut lat: Vec<Series> = lat
        .into_iter()
        .map(|(t, points)| Series {
            label: t.to_owned(),
            points,
            limit: false,
        })
        .collect();
    for (label, ns) in [
        ("limit: cache line", r.limits.cache_line_rtt.p50_ns),
        ("limit: raw futex", r.limits.futex_rtt.p50_ns),
    ] {
        lat.push(Series {
            label: label.to_owned(),
            points: vec![(x_span.0, ns as f64 / 1e3), (x_span.1, ns as f64 / 1e3)],
            limit: true,
        });
    }

    let raw: Vec<(f64, f64)> = r
        .limits
        .raw_rtt
        .iter()
        .filter(|p| sizes.contains(&p.size))
        .map(|p| (p.size as f64, p.rtt.p50_ns as f64 / 1e3))
        .collect();
    if !raw.is_empty() {
        lat.push(Series {
            label: "limit: raw N-byte ping-pong".into(),
            points: raw,
            limit: true,
        });
    }

    let mut tput: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for p in &r.sweep_throughput {
        tput.entry(&p.transport)
            .or_default()
            .push((p.size as f64, p.rate.bytes_per_s / 1e6));
    }
    let mut tput: Vec<Series> = tput
        .into_iter()
        .map(|(t, points)| Series {
            label: t.to_owned(),
            points,
            limit: false,
        })
        .collect();
    let mut mc: Vec<(f64, f64)> = r
        .limits
        .memcpy
        .iter()
        .filter(|m| sizes.contains(&m.size))
        .map(|m| (m.size as f64, m.bytes_per_s / 1e6))
        .collect();
    mc.sort_by(|a, b| a.0.total_cmp(&b.0));
    if !mc.is_empty() {
        tput.push(Series {
            label: "limit: memcpy".into(),
            points: mc,
            limit: true,
        });
    }
    let raw: Vec<(f64, f64)> = r
        .limits
        .raw_stream
        .iter()
        .filter(|p| sizes.contains(&p.size))
        .map(|p| (p.size as f64, p.bytes_per_s / 1e6))
        .collect();
    if !raw.is_empty() {
        tput.push(Series {
            label: "limit: raw N-byte stream".into(),
            points: raw,
            limit: true,
        });
    }

    let title_lat = "round trip p50 (µs) vs message size, two processes";
    let title_tput = "one-way throughput (MB/s) vs message size, two processes";
    let mut out = Vec::new();
    for (name, title, series) in [
        ("latency", title_lat, &lat),
        ("throughput", title_tput, &tput),
    ] {
        let svg = dir.join(format!("{name}.svg"));
        let png = dir.join(format!("{name}.png"));
        draw(
            SVGBackend::new(&svg, SIZE).into_drawing_area(),
            title,
            series,
            x_span,
        )?;
        draw(
            BitMapBackend::new(&png, SIZE).into_drawing_area(),
            title,
            series,
            x_span,
        )?;
        out.push(svg);
        out.push(png);
    }
    Ok(out)
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
    x: (f64, f64),
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("chart {title:?}: {e:?}");
    root.fill(&WHITE).map_err(e)?;
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (ymin, ymax) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    let (ymin, ymax) = if ymin <= ymax && ymin > 0.0 {
        (ymin / 2.0, ymax * 2.0)
    } else {
        (0.01, 1.0)
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d((x.0..x.1).log_scale(), (ymin..ymax).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("message size")
        .x_label_formatter(&|v| human_size(v.round() as usize))
        .y_label_formatter(&|v| format!("{v:.3}"))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    let mut color = 0;
    let mut limits = 0;
    for s in series {
        let style = if s.limit {
            limits += 1;
            let grey = if limits == 1 { 0 } else { 140 };
            ShapeStyle::from(&RGBColor(grey, grey, grey)).stroke_width(2)
        } else {
            color += 1;
            ShapeStyle::from(&Palette99::pick(color)).stroke_width(2)
        };
        let drawn = chart
            .draw_series(LineSeries::new(s.points.iter().copied(), style))
            .map_err(e)?;
        drawn
            .label(s.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        if !s.limit {
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, style.filled())))
                .map_err(e)?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}
