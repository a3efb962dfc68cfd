//! `GET /metrics`: the hub's state in the Prometheus text exposition format (version 0.0.4),
//! so any Prometheus-compatible scraper can alert on replication lag, silent or flagged nodes
//! and a stuck audit trail. Built from the same read models as `/v1/nodes` and `/v1/stats`.

use crate::api::ApiError;
use crate::store::HubState;
use crate::views::{NodeView, StatsView};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::fmt::Write;

pub(crate) async fn get_metrics(State(state): State<HubState>) -> Result<Response, ApiError> {
    let (nodes, stats) = state
        .blocking(|s| Ok::<_, ApiError>((s.nodes_view()?, s.stats_view()?)))
        .await?;
    let body = render(&nodes, &stats, crate::store::now_ms().0);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// Label values are node ids and jurisdiction codes (restricted character sets), escaped
/// anyway as the format requires.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A per-node gauge: name, type, help text, and its value for a node at hub time `now_ms`.
type NodeSeries = (
    &'static str,
    &'static str,
    &'static str,
    fn(&NodeView, i64) -> f64,
);

fn render(nodes: &[NodeView], stats: &StatsView, now_ms: i64) -> String {
    let mut out = String::new();
    let per_node: [NodeSeries; 8] = [
        (
            "outpost_replication_lag_records",
            "gauge",
            "Records the node has made durable that the hub has not yet received.",
            |n, _| n.lag_records as f64,
        ),
        (
            "outpost_replication_lag_seconds",
            "gauge",
            "Age of the node's oldest record the hub has not yet acknowledged.",
            |n, _| n.lag_seconds,
        ),
        (
            "outpost_replication_edge_head",
            "gauge",
            "The node's durable log head as last reported.",
            |n, _| n.edge_head as f64,
        ),
        (
            "outpost_replication_acked_seq",
            "gauge",
            "The hub's durable position in the node's log.",
            |n, _| n.acked_seq as f64,
        ),
        (
            "outpost_downstream_lag_records",
            "gauge",
            "Downstream records (settlements, results) the node has not yet applied.",
            |n, _| n.down_head.saturating_sub(n.down_acked) as f64,
        ),
        (
            "outpost_downstream_head",
            "gauge",
            "Head of the hub's downstream chain for the node.",
            |n, _| n.down_head as f64,
        ),
        (
            "outpost_node_flagged",
            "gauge",
            "1 if the node is flagged (verification failure or lost records) and refused.",
            |n, _| f64::from(u8::from(n.flagged)),
        ),
        (
            "outpost_node_last_contact_age_seconds",
            "gauge",
            "Seconds since the node was last heard from (NaN if never).",
            |n, now| {
                n.last_contact_ms
                    .map_or(f64::NAN, |t| (now - t).max(0) as f64 / 1000.0)
            },
        ),
    ];
    for (name, kind, help, value) in per_node {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for n in nodes {
            let _ = writeln!(
                out,
                "{name}{{node=\"{}\",jurisdiction=\"{}\"}} {}",
                esc(&n.id),
                esc(&n.jurisdiction),
                value(n, now_ms)
            );
        }
    }
    let hub = esc(&stats.hub_id);
    let hub_wide: [(&str, &str, &str, u64); 5] = [
        (
            "outpost_hub_records",
            "gauge",
            "Upstream records held.",
            stats.records,
        ),
        (
            "outpost_hub_open_bets",
            "gauge",
            "Bets not yet settled.",
            stats.open_bets,
        ),
        (
            "outpost_hub_audit_pending",
            "gauge",
            "Audit segments waiting for upload.",
            stats.audit_pending,
        ),
        (
            "outpost_hub_audit_retrying",
            "gauge",
            "Audit segments whose upload failed at least once.",
            stats.audit_retrying,
        ),
        (
            "outpost_hub_reprocessed_settlements_total",
            "counter",
            "Settlement passes that found the bet already settled (since start).",
            stats.reprocessed_settlements,
        ),
    ];
    for (name, kind, help, v) in hub_wide {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{hub=\"{hub}\"}} {v}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, lag_records: u64, lag_seconds: f64) -> NodeView {
        NodeView {
            id: id.into(),
            jurisdiction: "GB".into(),
            registered: true,
            last_contact_ms: Some(9_000),
            edge_head: 100,
            acked_seq: 100 - lag_records,
            lag_records,
            lag_seconds,
            down_head: 7,
            down_acked: 5,
            flagged: false,
            flag_reason: None,
            quarantined: None,
        }
    }

    #[test]
    fn renders_prometheus_text() {
        let stats = StatsView {
            hub_id: "hub-1".into(),
            nodes: 2,
            records: 200,
            bets: 10,
            open_bets: 3,
            settled: 7,
            results: 1,
            down_records: 7,
            audit_uploaded: 4,
            audit_pending: 1,
            audit_retrying: 0,
            reprocessed_settlements: 2,
        };
        let text = render(
            &[node("gb-1", 12, 0.25), node("gb-2", 0, 0.0)],
            &stats,
            10_500,
        );
        for line in [
            "# TYPE outpost_replication_lag_seconds gauge",
            "outpost_replication_lag_records{node=\"gb-1\",jurisdiction=\"GB\"} 12",
            "outpost_replication_lag_seconds{node=\"gb-1\",jurisdiction=\"GB\"} 0.25",
            "outpost_replication_lag_seconds{node=\"gb-2\",jurisdiction=\"GB\"} 0",
            "outpost_downstream_lag_records{node=\"gb-1\",jurisdiction=\"GB\"} 2",
            "outpost_node_last_contact_age_seconds{node=\"gb-1\",jurisdiction=\"GB\"} 1.5",
            "outpost_hub_reprocessed_settlements_total{hub=\"hub-1\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample line is `name{labels} value` with a parseable value.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let v = l.rsplit(' ').next().unwrap();
            assert!(v.parse::<f64>().is_ok(), "{l}");
        }
    }
}
