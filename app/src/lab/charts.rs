//! The load charts of the cluster and scaling labs: throughput over time,
//! and how long requests took. Each has its figures in a table beneath it.
//! They draw plain series, so each lab feeds them from its own ticks.

use super::markup::{Attr, Fixed, Markup};
use super::LabView;
use leptos::prelude::*;
use protocol::format::{format_count, format_us};
use protocol::lab::{Incident, ScalingTick, Tick};
use protocol::{Bucket, Latency};

const W: f64 = 600.0;
const H: f64 = 140.0;
/// Room for the axis labels.
const LEFT: f64 = 52.0;
const BOTTOM: f64 = 18.0;

/// One point of the throughput line: a tick of either load lab.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatePoint {
    /// Milliseconds since the run began.
    pub at_ms: u64,
    /// Answers so far.
    pub completed: u64,
    /// Answers per second over the last tick.
    pub rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
}

impl From<&Tick> for RatePoint {
    fn from(t: &Tick) -> Self {
        RatePoint {
            at_ms: t.at_ms,
            completed: t.completed,
            rps: t.rps,
            p50_us: t.p50_us,
            p99_us: t.p99_us,
        }
    }
}

impl From<&ScalingTick> for RatePoint {
    fn from(t: &ScalingTick) -> Self {
        RatePoint {
            at_ms: t.at_ms,
            completed: t.completed,
            rps: t.rps,
            p50_us: t.p50_us,
            p99_us: t.p99_us,
        }
    }
}

/// A moment marked across the throughput chart: when (ms since the run
/// began) and its style (`death`: a cluster worker died; `event`: a
/// scaling fault or recovery).
pub type RateMark = (u64, &'static str);

/// The cluster lab's series: its ticks, and its workers' deaths.
pub fn cluster_rates(lab: LabView) -> (Memo<Vec<RatePoint>>, Memo<Vec<RateMark>>) {
    let points = Memo::new(move |_| lab.ticks.with(|t| t.iter().map(RatePoint::from).collect()));
    let marks = Memo::new(move |_| {
        lab.incidents.with(|incidents| {
            incidents
                .iter()
                .filter_map(|i| match i {
                    Incident::Exited { at_ms, .. } => Some((*at_ms, "death")),
                    _ => None,
                })
                .collect()
        })
    });
    (points, marks)
}

/// Requests per second at each tick, as a line, with moments marked
/// (`marks_mean` says what a mark is, for the drawing's description).
#[component]
pub fn Throughput(
    lab: LabView,
    caption: &'static str,
    #[prop(into)] points: Signal<Vec<RatePoint>>,
    #[prop(into)] marks: Signal<Vec<RateMark>>,
    marks_mean: &'static str,
) -> impl IntoView {
    let drawing = move || {
        points.with(|ticks| {
            if ticks.len() < 2 {
                return None;
            }
            let end = ticks.last().map_or(1, |t| t.at_ms).max(1) as f64;
            let top = ticks.iter().map(|t| t.rps).fold(1.0, f64::max);
            let x = move |ms: f64| LEFT + ms / end * (W - LEFT - 8.0);
            let y = move |rps: f64| (H - BOTTOM) - rps / top * (H - BOTTOM - 8.0);
            let points = ticks
                .iter()
                .map(|t| format!("{},{}", Fixed(x(t.at_ms as f64), 1), Fixed(y(t.rps), 1)))
                .collect::<Vec<_>>()
                .join(" ");
            let base = H - BOTTOM;
            let mut m = Markup::default();
            m.svg(W, H, &format!("Requests per second over the run; {marks_mean}. The figures are in the table below."))
            .empty("line", &[("class", &"axis"), ("x1", &LEFT), ("x2", &W), ("y1", &base), ("y2", &base)])
            .empty("line", &[("class", &"axis"), ("x1", &LEFT), ("x2", &LEFT), ("y1", &4), ("y2", &base)])
            .text(
                "text",
                &[("class", &"tick"), ("x", &(LEFT - 4.0)), ("y", &14), ("text-anchor", &"end")],
                &format_count(top.round() as u64),
            )
            .text(
                "text",
                &[("class", &"tick"), ("x", &(LEFT - 4.0)), ("y", &base), ("text-anchor", &"end")],
                "0",
            )
            .text(
                "text",
                &[("class", &"tick"), ("x", &(W - 8.0)), ("y", &(H - 4.0)), ("text-anchor", &"end")],
                &format_us(end as u64 * 1_000),
            );
            marks.with(|marks| {
                for &(at, class) in marks {
                    let at = x(at as f64);
                    m.empty("line", &[("class", &class), ("x1", &at), ("x2", &at), ("y1", &4), ("y2", &base)]);
                }
            });
            m.empty("polyline", &[("class", &"rate"), ("points", &points)]).close("svg");
            Some(m.finish())
        })
    };
    let rows = move || {
        points.with(|ticks| {
            let mut m = Markup::default();
            let num = [("class", &"num" as &dyn Attr)];
            for t in ticks {
                m.open("tr", &[])
                    .text("td", &num, &format_us(t.at_ms * 1_000))
                    .text("td", &num, &format_count(t.completed))
                    .text("td", &num, &format_count(t.rps.round() as u64))
                    .text("td", &num, &format_us(t.p50_us))
                    .text("td", &num, &format_us(t.p99_us))
                    .close("tr");
            }
            m.finish()
        })
    };
    view! {
        <figure class="chart throughput" class:empty=move || points.with(|t| t.len() < 2)>
            <figcaption>{caption} {lab.runtime_note()}</figcaption>
            <div class="drawing" inner_html=move || drawing().unwrap_or_default()></div>
            <details>
                <summary>"Throughput as a table"</summary>
                <div class="table-wrap" tabindex="0" role="region" aria-label="Throughput as a table">
                    <table class="compact">
                        <thead>
                            <tr>
                                <th scope="col">"At"</th>
                                <th scope="col">"Answered so far"</th>
                                <th scope="col">"Requests/s"</th>
                                <th scope="col">"p50"</th>
                                <th scope="col">"p99"</th>
                            </tr>
                        </thead>
                        <tbody inner_html=rows></tbody>
                    </table>
                </div>
            </details>
        </figure>
    }
}

/// Which bucket holds a latency: the first whose upper bound reaches it.
pub fn bucket_of(buckets: &[Bucket], us: u64) -> Option<usize> {
    buckets.iter().position(|b| us <= b.upper_us)
}

/// The finished load's latencies, in doubling buckets, with the
/// percentiles marked.
#[component]
pub fn LatencyHistogram(
    lab: LabView,
    #[prop(into)] latency: Signal<Option<Latency>>,
) -> impl IntoView {
    let drawing = move || {
        latency.with(|latency| {
            let latency = latency.as_ref()?;
            let buckets = &latency.buckets;
            if buckets.is_empty() {
                return None;
            }
            let most = buckets.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
            let slot = (W - LEFT) / buckets.len() as f64;
            let base = H - BOTTOM;
            let mut m = Markup::default();
            m.svg(W, H, "How many requests took each span of time, in doubling buckets, with p50, p90 and p99 marked. The figures are in the table below.")
            .empty("line", &[("class", &"axis"), ("x1", &LEFT), ("x2", &W), ("y1", &base), ("y2", &base)])
            .text(
                "text",
                &[("class", &"tick"), ("x", &(LEFT - 4.0)), ("y", &24), ("text-anchor", &"end")],
                &format_count(most as u64),
            );
            for (i, b) in buckets.iter().enumerate() {
                let h = b.count as f64 / most * (H - BOTTOM - 20.0);
                let x = LEFT + i as f64 * slot;
                m.open(
                    "rect",
                    &[
                        ("class", &"bucket"),
                        ("x", &(x + 1.0)),
                        ("y", &(base - h)),
                        ("width", &(slot - 2.0).max(1.0)),
                        ("height", &h),
                    ],
                )
                .text(
                    "title",
                    &[],
                    &format!("up to {}: {} requests", format_us(b.upper_us), format_count(b.count)),
                )
                .close("rect")
                .text(
                    "text",
                    &[
                        ("class", &"tick"),
                        ("x", &(x + slot / 2.0)),
                        ("y", &(H - 4.0)),
                        ("text-anchor", &"middle"),
                    ],
                    &format_us(b.upper_us),
                );
            }
            for (name, us) in [("p50", latency.p50_us), ("p90", latency.p90_us), ("p99", latency.p99_us)] {
                // HDR reports a value's highest equivalent, which can pass
                // the last bound by a hair: that is the last bucket.
                let i = bucket_of(buckets, us).unwrap_or(buckets.len() - 1);
                let x = LEFT + (i as f64 + 0.5) * slot;
                m.empty(
                    "line",
                    &[("class", &format!("pct {name}")), ("x1", &x), ("x2", &x), ("y1", &12), ("y2", &base)],
                )
                .text(
                    "text",
                    &[("class", &"pct-label"), ("x", &x), ("y", &10), ("text-anchor", &"middle")],
                    name,
                );
            }
            m.close("svg");
            Some(m.finish())
        })
    };
    let rows = move || {
        latency.with(|latency| {
            latency.as_ref().map(|l| {
                let mut rows: Vec<(String, String)> = vec![
                    ("p50".into(), format_us(l.p50_us)),
                    ("p90".into(), format_us(l.p90_us)),
                    ("p99".into(), format_us(l.p99_us)),
                    ("max".into(), format_us(l.max_us)),
                ];
                rows.extend(l.buckets.iter().map(|b| {
                    (
                        format!("up to {}", format_us(b.upper_us)),
                        format!("{} requests", format_count(b.count)),
                    )
                }));
                let mut m = Markup::default();
                for (k, v) in rows {
                    m.open("tr", &[])
                        .text("th", &[("scope", &"row")], &k)
                        .text("td", &[("class", &"num")], &v)
                        .close("tr");
                }
                m.finish()
            })
        })
    };
    view! {
        <figure class="chart histogram" class:empty=move || latency.with(Option::is_none)>
            <figcaption>"How long requests took, from the load generator's HDR histogram" {lab.runtime_note()}</figcaption>
            <div class="drawing" inner_html=move || drawing().unwrap_or_default()></div>
            <details>
                <summary>"Latencies as a table"</summary>
                <table class="compact">
                    <tbody inner_html=move || rows().unwrap_or_default()></tbody>
                </table>
            </details>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_falls_in_the_first_bucket_that_reaches_it() {
        let buckets = [
            Bucket {
                upper_us: 64,
                count: 1,
            },
            Bucket {
                upper_us: 128,
                count: 5,
            },
        ];
        assert_eq!(bucket_of(&buckets, 10), Some(0));
        assert_eq!(bucket_of(&buckets, 64), Some(0));
        assert_eq!(bucket_of(&buckets, 65), Some(1));
        assert_eq!(bucket_of(&buckets, 500), None);
    }
}
