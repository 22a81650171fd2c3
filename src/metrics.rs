//! Prometheus metrics (`GET /metrics`, text format 0.0.4).

use crate::wire::QuotaStatus;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// `quota_records_total{result="ok|store_error"}`
    pub records: IntCounterVec,
    /// `quota_admissions_total{decision="allowed|denied"}`
    pub admissions: IntCounterVec,
    pub websocket_connections: IntGauge,
    /// `quota_workspaces{status}`: set at scrape time.
    workspaces: IntGaugeVec,
    pub upstream_latency: Histogram,
    pub store_latency: Histogram,
    /// `quota_webhook_deliveries{result}`: copied from the dispatcher at scrape.
    webhooks: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        // Names and labels are constants: registration cannot fail except by a
        // programming error, which the unit test below would catch.
        let records = IntCounterVec::new(
            Opts::new("quota_records_total", "Usage records received, by result"),
            &["result"],
        )
        .expect("valid metric");
        let admissions = IntCounterVec::new(
            Opts::new(
                "quota_admissions_total",
                "Admission decisions for proxied requests",
            ),
            &["decision"],
        )
        .expect("valid metric");
        let websocket_connections =
            IntGauge::new("quota_websocket_connections", "Open WebSocket connections")
                .expect("valid metric");
        let workspaces = IntGaugeVec::new(
            Opts::new("quota_workspaces", "Workspaces by current status"),
            &["status"],
        )
        .expect("valid metric");
        let upstream_latency = Histogram::with_opts(
            HistogramOpts::new(
                "quota_upstream_latency_seconds",
                "Time to the upstream's response headers",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )
        .expect("valid metric");
        let store_latency = Histogram::with_opts(
            HistogramOpts::new(
                "quota_store_latency_seconds",
                "Time for a record to be committed by the store",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
        )
        .expect("valid metric");
        let webhooks = IntGaugeVec::new(
            Opts::new(
                "quota_webhook_deliveries",
                "Webhook alerts since start, by result",
            ),
            &["result"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(records.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(admissions.clone()),
            Box::new(websocket_connections.clone()),
            Box::new(workspaces.clone()),
            Box::new(upstream_latency.clone()),
            Box::new(store_latency.clone()),
            Box::new(webhooks.clone()),
        ] {
            registry.register(collector).expect("unique metric");
        }
        Self {
            registry,
            records,
            admissions,
            websocket_connections,
            workspaces,
            upstream_latency,
            store_latency,
            webhooks,
        }
    }

    /// Renders everything, with the scrape-time values filled in.
    pub fn render(&self, statuses: &[(QuotaStatus, usize)], webhooks: &[(&str, u64)]) -> String {
        for (status, count) in statuses {
            self.workspaces
                .with_label_values(&[status.as_str()])
                .set(*count as i64);
        }
        for (result, count) in webhooks {
            self.webhooks
                .with_label_values(&[result])
                .set(*count as i64);
        }
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.records.with_label_values(&["ok"]).inc();
        let text = m.render(&[(QuotaStatus::Warning, 2)], &[("delivered", 1)]);
        assert!(
            text.contains("quota_records_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("quota_workspaces{status=\"WARNING\"} 2"),
            "{text}"
        );
    }
}
