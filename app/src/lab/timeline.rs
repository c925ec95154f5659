//! The per-worker timeline: one lane per worker, from spawn to exit, drawn
//! on the server's clock as the events arrive, with the same stamps in a
//! table beneath.

use super::markup::{Attr, Fixed, Markup};
use super::LabView;
use leptos::prelude::*;
use protocol::format::format_us;
use protocol::lab::{Incident, WorkerRow};

/// The drawing's size in SVG units; it scales to the page's width.
const W: f64 = 800.0;
const LABEL: f64 = 80.0;
const LANE: f64 = 28.0;
const AXIS: f64 = 22.0;
/// The narrowest mark drawn, so a 50 µs start stays visible on a 2 s axis.
const MIN_MARK: f64 = 2.0;

/// One coloured stretch of a lane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub kind: &'static str,
    pub from_us: u64,
    pub to_us: u64,
}

/// What one lane shows: stretches, and instants (exits, deaths, respawns).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lane {
    pub worker: u32,
    pub segments: Vec<Segment>,
    pub marks: Vec<(&'static str, u64)>,
    /// Progress of a worker still working, 0 to 1.
    pub progress: Option<f64>,
}

/// Turn the workers and incidents into lanes. `now` is the newest stamp,
/// where unfinished stretches end.
pub fn lanes(workers: &[WorkerRow], incidents: &[Incident], now: u64) -> Vec<Lane> {
    workers
        .iter()
        .filter(|w| w.ready_at_us.is_some())
        .map(|w| lane(w, incidents, now))
        .collect()
}

fn lane(w: &WorkerRow, incidents: &[Incident], now: u64) -> Lane {
    let mut lane = Lane {
        worker: w.worker,
        ..Lane::default()
    };
    let (Some(spawned), Some(ready)) = (w.spawned_at_us(), w.ready_at_us) else {
        return lane;
    };
    let mut push = |kind, from_us: u64, to_us: u64| {
        lane.segments.push(Segment {
            kind,
            from_us,
            to_us: to_us.max(from_us),
        })
    };
    push("starting", spawned, ready);
    let mut work_from = ready;
    if let Some(done) = w.messages_at_us {
        push("messages", ready, done);
        work_from = done;
    }
    let end = w.finished_at_us.unwrap_or(now);
    // A cluster worker that died is down from its death to its respawn.
    let mut down_since = None;
    for incident in incidents {
        match *incident {
            Incident::Exited { worker, at_ms, .. } if worker == w.worker => {
                let at = at_ms * 1_000;
                push("working", work_from, at);
                lane.marks.push(("died", at));
                down_since = Some(at);
            }
            Incident::Respawned { worker, at_ms, .. } if worker == w.worker => {
                let at = at_ms * 1_000;
                if let Some(since) = down_since.take() {
                    push("down", since, at);
                }
                lane.marks.push(("respawned", at));
                work_from = at;
            }
            _ => {}
        }
    }
    match down_since {
        Some(since) => push("down", since, end),
        None => push("working", work_from, end),
    }
    match w.finished_at_us {
        Some(at) => lane.marks.push(("exit", at)),
        // Only a share of a job has a progress; a cluster worker serves.
        None => lane.progress = (w.total > 0).then(|| w.fraction()),
    }
    lane
}

/// The timeline and its table.
#[component]
pub fn Timeline(lab: LabView, noun: &'static str) -> impl IntoView {
    let now = lab.latest_us;
    let lanes = Memo::new(move |_| {
        lab.workers
            .with(|w| lab.incidents.with(|i| lanes(w, i, now.get())))
    });
    let drawing = move || {
        let (lanes, now) = (lanes.get(), now.get());
        if lanes.is_empty() {
            return None;
        }
        let span = now.max(1) as f64;
        let x = move |us: u64| LABEL + (us as f64 / span) * (W - LABEL - 40.0);
        let height = AXIS + LANE * lanes.len() as f64 + 4.0;
        let mut m = Markup::default();
        m.svg(
            W,
            height,
            &format!(
                "Timeline of each {} from spawn to exit; the same times are in the table below",
                noun.to_ascii_lowercase()
            ),
        );
        for i in 0..=4 {
            let us = now * i / 4;
            m.empty(
                "line",
                &[
                    ("class", &"grid"),
                    ("x1", &x(us)),
                    ("x2", &x(us)),
                    ("y1", &(AXIS - 4.0)),
                    ("y2", &height),
                ],
            )
            .text(
                "text",
                &[
                    ("class", &"tick"),
                    ("x", &x(us)),
                    ("y", &12),
                    ("text-anchor", &"middle"),
                ],
                &format_us(us),
            );
        }
        for (i, lane) in lanes.iter().enumerate() {
            let y = AXIS + i as f64 * LANE;
            m.open("g", &[("class", &"lane"), ("data-lane", &lane.worker)])
                .text(
                    "text",
                    &[
                        ("class", &"label"),
                        ("x", &0),
                        ("y", &(y + LANE / 2.0 + 4.0)),
                    ],
                    &format!("{noun} {}", lane.worker),
                );
            for s in &lane.segments {
                m.open(
                    "rect",
                    &[
                        ("class", &format!("seg {}", s.kind)),
                        ("x", &x(s.from_us)),
                        ("y", &(y + 5.0)),
                        ("width", &(x(s.to_us) - x(s.from_us)).max(MIN_MARK)),
                        ("height", &(LANE - 10.0)),
                    ],
                )
                .text(
                    "title",
                    &[],
                    &format!(
                        "{}: {} → {}",
                        s.kind,
                        format_us(s.from_us),
                        format_us(s.to_us)
                    ),
                )
                .close("rect");
            }
            for &(kind, at) in &lane.marks {
                m.open(
                    "line",
                    &[
                        ("class", &format!("mark {kind}")),
                        ("x1", &x(at)),
                        ("x2", &x(at)),
                        ("y1", &(y + 1.0)),
                        ("y2", &(y + LANE - 1.0)),
                    ],
                )
                .text("title", &[], &format!("{kind} at {}", format_us(at)))
                .close("line");
            }
            if let Some(p) = lane.progress {
                let end = lane.segments.last().map_or(0, |s| s.to_us);
                m.text(
                    "text",
                    &[
                        ("class", &"progress"),
                        ("x", &(x(end) + 4.0)),
                        ("y", &(y + LANE / 2.0 + 4.0)),
                    ],
                    &format!("{}%", Fixed(p * 100.0, 0)),
                );
            }
            m.close("g");
        }
        m.close("svg");
        Some(m.finish())
    };
    let table_rows = move || {
        lab.workers.with(|workers| {
            let mut m = Markup::default();
            // `lanes` keeps the same workers, in the same order.
            for (w, lane) in workers
                .iter()
                .filter(|w| w.ready_at_us.is_some())
                .zip(lanes.get())
            {
                let at = |t: Option<u64>| t.map_or("—".to_string(), format_us);
                let incidents: Vec<String> = lane
                    .marks
                    .iter()
                    .filter(|(kind, _)| *kind != "exit")
                    .map(|(kind, at)| format!("{kind} at {}", format_us(*at)))
                    .collect();
                let num = [("class", &"num" as &dyn Attr)];
                m.open("tr", &[])
                    .text("th", &[("scope", &"row")], &w.worker.to_string())
                    .text("td", &num, &at(w.spawned_at_us()))
                    .text("td", &num, &at(w.ready_at_us))
                    .text("td", &num, &at(w.messages_at_us))
                    .text("td", &num, &at(w.finished_at_us))
                    .text("td", &[], &incidents.join(", "))
                    .close("tr");
            }
            m.finish()
        })
    };
    view! {
        <figure class="timeline" class:empty=move || lab.workers.with(Vec::is_empty)>
            <figcaption>
                {format!("Each {}'s life on the server's clock, from the start of the run", noun.to_ascii_lowercase())}
                {lab.runtime_note()}
            </figcaption>
            <div class="drawing" inner_html=move || drawing().unwrap_or_default()></div>
            <ul class="legend" aria-hidden="true">
                <li><span class="key starting"></span>"starting"</li>
                <li><span class="key messages"></span>"round trips"</li>
                <li><span class="key working"></span>"working"</li>
                <li><span class="key down"></span>"down (dead)"</li>
                <li><span class="key exit"></span>"exit"</li>
            </ul>
            <details>
                <summary>"The timeline as a table"</summary>
                <div class="table-wrap" tabindex="0" role="region" aria-label="The timeline as a table">
                    <table class="compact">
                        <thead>
                            <tr>
                                <th scope="col">{noun}</th>
                                <th scope="col">"Spawned"</th>
                                <th scope="col">"Ready"</th>
                                <th scope="col">"Round trips done"</th>
                                <th scope="col">"Finished"</th>
                                <th scope="col">"Deaths and respawns"</th>
                            </tr>
                        </thead>
                        <tbody inner_html=table_rows></tbody>
                    </table>
                </div>
            </details>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::lab::LabState;
    use protocol::{ServerEvent, WorkResult};

    fn lanes_of(lab: &LabState) -> Vec<Lane> {
        lanes(&lab.workers, &lab.incidents, lab.latest_us)
    }

    fn spawned(worker: u32, latency: u64, at: u64) -> ServerEvent {
        ServerEvent::WorkerSpawned {
            run: 1,
            worker,
            start_latency_us: latency,
            pid: 7,
            tid: None,
            at_us: Some(at),
        }
    }

    #[test]
    fn a_worker_starts_talks_works_and_exits() {
        let mut lab = LabState::default();
        lab.begin(1);
        lab.apply(spawned(0, 4_000, 5_000));
        lab.apply(ServerEvent::RoundTrips {
            run: 1,
            worker: 0,
            count: 10,
            p50_ns: 1,
            p99_ns: 2,
            max_ns: 3,
            at_us: Some(6_000),
        });
        lab.apply(ServerEvent::WorkerFinished {
            run: 1,
            worker: 0,
            wall_us: 20_000,
            cpu_us: 1,
            memory: None,
            messages: None,
            result: WorkResult::Slept { ms: 1 },
            at_us: Some(21_000),
        });
        let lanes = lanes_of(&lab);
        assert_eq!(lanes.len(), 1);
        let kinds: Vec<_> = lanes[0]
            .segments
            .iter()
            .map(|s| (s.kind, s.from_us, s.to_us))
            .collect();
        assert_eq!(
            kinds,
            [
                ("starting", 1_000, 5_000),
                ("messages", 5_000, 6_000),
                ("working", 6_000, 21_000)
            ]
        );
        assert_eq!(lanes[0].marks, [("exit", 21_000)]);
        assert_eq!(lanes[0].progress, None);
    }

    #[test]
    fn a_killed_cluster_worker_is_down_until_its_respawn() {
        let mut lab = LabState::default();
        lab.begin(1);
        lab.apply(spawned(1, 3_000, 10_000));
        lab.apply(ServerEvent::WorkerExited {
            run: 1,
            instance: None,
            worker: 1,
            pid: 7,
            signal: Some(9),
            exit_code: None,
            at_ms: 50,
        });
        lab.apply(ServerEvent::WorkerRespawned {
            run: 1,
            instance: None,
            worker: 1,
            pid: 8,
            downtime_us: 6_000,
            at_ms: 56,
        });
        lab.apply(ServerEvent::ClusterTick {
            run: 1,
            at_ms: 80,
            per_worker: vec![0, 40],
            completed: 40,
            errors: 1,
            rps: 500.0,
            load_ms: 70,
            p50_us: 1,
            p90_us: 2,
            p99_us: 3,
        });
        let lane = &lanes_of(&lab)[0];
        let kinds: Vec<_> = lane
            .segments
            .iter()
            .map(|s| (s.kind, s.from_us, s.to_us))
            .collect();
        assert_eq!(
            kinds,
            [
                ("starting", 7_000, 10_000),
                ("working", 10_000, 50_000),
                ("down", 50_000, 56_000),
                ("working", 56_000, 80_000)
            ]
        );
        assert_eq!(lane.marks, [("died", 50_000), ("respawned", 56_000)]);
        assert_eq!(lane.progress, None, "serving has no progress");
    }
}
