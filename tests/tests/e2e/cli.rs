//! The command line: `spawnlab run --runtime both` and `spawnlab bench
//! --quick`, the real binary as a learner runs it from a terminal.

use spawnlab_tests::server_binary;
use std::process::Command;

fn spawnlab(args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let out = Command::new(server_binary())
        .args(args)
        .env_remove("LEPTOS_SITE_ADDR")
        .env_remove("LEPTOS_SITE_ROOT")
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn a_lab_runs_on_both_runtimes_from_the_terminal() -> anyhow::Result<()> {
    let (ok, out, err) = spawnlab(&[
        "run",
        "--model",
        "child-process",
        "--runtime",
        "both",
        "--below",
        "1000000",
        "--round-trips",
        "50",
    ])?;
    assert!(ok, "{out}\n{err}");
    // Each run's table names its runtime; the last table puts them side by side.
    assert!(out.contains("Node.js v"), "{out}");
    assert!(out.contains("Rust engine · child_process"), "{out}");
    assert_eq!(out.matches("78,498 primes").count(), 2, "{out}");
    assert!(out.contains("same settings on both runtimes"), "{out}");
    assert!(out.contains("Node/Rust"), "{out}");
    Ok(())
}

#[test]
fn a_refused_flag_names_the_field_and_its_range() -> anyhow::Result<()> {
    let (ok, _, err) = spawnlab(&[
        "run",
        "--model",
        "threads",
        "--workers",
        "99",
        "--runtime",
        "rust",
    ])?;
    assert!(!ok);
    assert!(
        err.contains("spec.workers must be between 1 and 16, got 99"),
        "{err}"
    );
    let (ok, _, err) = spawnlab(&[
        "run",
        "--model",
        "child-process",
        "--serialization",
        "advanced",
        "--runtime",
        "rust",
    ])?;
    assert!(!ok);
    assert!(err.contains("spec.model.serialization"), "{err}");
    Ok(())
}

#[test]
fn the_quick_bench_measures_both_runtimes_side_by_side() -> anyhow::Result<()> {
    let (ok, out, err) = spawnlab(&["bench", "--quick", "--json"])?;
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out)?;
    assert!(report["node_version"]
        .as_str()
        .is_some_and(|v| v.starts_with('v')));
    let rows = report["rows"].as_array().expect("rows");
    assert!(rows.len() >= 15, "{} rows", rows.len());
    let samples = |s: &serde_json::Value| s["samples"].as_array().map_or(0, Vec::len);
    let mut checked = 0;
    for row in rows {
        let what = row["what"].as_str().unwrap_or_default();
        let node = if row["node_lab"].is_null() {
            &row["node_plain"]
        } else {
            &row["node_lab"]
        };
        if !node.is_null() {
            assert!(
                samples(node) > 0,
                "{what}: the Node.js figure has its raw samples"
            );
        }
        if !row["rust"].is_null() {
            assert!(
                samples(&row["rust"]) > 0,
                "{what}: the Rust figure has its raw samples"
            );
        }
        // Where a lab measured a Node.js figure, plain Node measured it too.
        if !row["node_lab"].is_null() && !row["node_plain"].is_null() {
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "start of a Worker, of a fork, an IPC round trip"
    );
    Ok(())
}
