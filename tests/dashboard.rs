//! The shipped Grafana dashboard and alert rules only query metrics weir serves:
//! every metric name in an expression is a sample name of `weir consume
//! --metrics-addr` or `weir lag --metrics-addr` (process metrics included). A renamed
//! metric fails this test instead of leaving an empty panel or a silent alert.

use std::collections::BTreeSet;

fn repo(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The sample names an OpenMetrics page can carry, from its `# TYPE` lines.
fn sample_names(page: &str, out: &mut BTreeSet<String>) {
    for line in page.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut it = rest.split_whitespace();
        let (Some(name), Some(kind)) = (it.next(), it.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                out.insert(format!("{name}_total"));
            }
            "histogram" => {
                for s in ["_bucket", "_sum", "_count"] {
                    out.insert(format!("{name}{s}"));
                }
            }
            _ => {
                out.insert(name.to_owned());
            }
        }
    }
}

/// Metric names in a PromQL expression: identifiers of weir's families, outside
/// label matchers and strings.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut cur = String::new();
    let mut depth_braces = 0;
    let mut in_str = false;
    for c in expr.chars().chain(std::iter::once(' ')) {
        if in_str {
            in_str = c != '"';
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => depth_braces += 1,
            '}' => depth_braces -= 1,
            _ => {}
        }
        if (c.is_ascii_alphanumeric() || c == '_' || c == ':') && depth_braces == 0 {
            cur.push(c);
        } else {
            if ["kafka_", "process_", "weir_"]
                .iter()
                .any(|p| cur.starts_with(p))
            {
                names.push(cur.clone());
            }
            cur.clear();
        }
    }
    names
}

fn served() -> BTreeSet<String> {
    use weir::metrics::Scrape;
    let mut names = BTreeSet::new();
    sample_names(&weir::metrics::Metrics::new().scrape(), &mut names);
    let g = weir::lag::GroupLag {
        group: "g".into(),
        state: "Stable".into(),
        members: 1,
        partitions: vec![weir::lag::PartitionLag {
            topic: "t".into(),
            partition: 0,
            committed: 1,
            log_end: 2,
            oldest_unconsumed_ms: Some(0),
        }],
    };
    let page = weir::lag::render(&[g], 1000, &weir::lag::ExporterStats::default());
    sample_names(&weir::metrics::with_process_metrics(page), &mut names);
    names
}

#[test]
fn every_dashboard_query_names_a_metric_weir_serves() {
    let served = served();
    assert!(
        served.contains("process_resident_memory_bytes"),
        "{served:?}"
    );
    let dash: serde_json::Value =
        serde_json::from_str(&repo("alerts/weir-dashboard.json")).expect("the dashboard is JSON");
    assert_eq!(dash["schemaVersion"].as_i64(), Some(39));
    let mut exprs = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        assert!(p["title"].is_string() && p["gridPos"].is_object(), "{p}");
        for t in p["targets"].as_array().expect("targets") {
            exprs.push(t["expr"].as_str().expect("an expr").to_owned());
        }
    }
    for v in dash["templating"]["list"].as_array().expect("variables") {
        if let Some(q) = v["definition"].as_str() {
            exprs.push(q.to_owned());
        }
    }
    assert!(exprs.len() >= 12, "{exprs:?}");
    let mut used = BTreeSet::new();
    for e in &exprs {
        let names = metric_names(e);
        assert!(!names.is_empty(), "no weir metric in {e}");
        for n in names {
            assert!(
                served.contains(&n),
                "`{n}` (in {e}) is not served; served: {served:?}"
            );
            used.insert(n);
        }
    }
    // The dashboard shows the seed's lag and the process metrics.
    for n in [
        "kafka_consumer_lag",
        "kafka_consumer_lag_sum",
        "kafka_consumer_lag_seconds",
    ] {
        assert!(used.contains(n), "{n} is not on the dashboard");
    }
}

#[test]
fn the_alert_rules_query_served_metrics() {
    let served = served();
    let rules = repo("alerts/weir-alerts.yml");
    let exprs: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .collect();
    assert_eq!(exprs.len(), 3, "{rules}");
    for e in exprs {
        for n in metric_names(e) {
            assert!(served.contains(&n), "`{n}` (in {e}) is not served");
        }
    }
}
