//! The bus's own figures over a run: every process's `/metrics` read before and after, with the
//! console's reader of the Prometheus text format, and the difference.

pub use lienthong_console::metrics::Snapshot;

/// Reads every URL and sums the processes (an unreachable or unreadable one is an error naming
/// it).
pub async fn fetch(http: &reqwest::Client, urls: &[String]) -> anyhow::Result<Snapshot> {
    let mut all = Snapshot::default();
    for url in urls {
        let text = http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| anyhow::anyhow!("--metrics {url}: {e}"))?
            .text()
            .await?;
        all.add(Snapshot::parse(&text).map_err(|e| anyhow::anyhow!("--metrics {url}: {e}"))?);
    }
    Ok(all)
}

/// How much the series of `name` whose labels include every `filter` pair grew between the two
/// readings.
pub fn increase(before: &Snapshot, after: &Snapshot, name: &str, filter: &[(&str, &str)]) -> f64 {
    let keep =
        |s: &lienthong_console::metrics::Series| filter.iter().all(|(k, v)| s.label(k) == Some(*v));
    lienthong_console::metrics::increase(before.sum(name, keep), after.sum(name, keep))
}

/// The values of label `key` among the series of `name`, sorted.
pub fn label_values(s: &Snapshot, name: &str, key: &str) -> Vec<String> {
    let mut values: Vec<String> = s
        .each(name)
        .filter_map(|(series, _)| series.label(key).map(str::to_owned))
        .collect();
    values.sort();
    values.dedup();
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increases_by_label_and_label_values() {
        let before = Snapshot::parse(
            "lienthong_published_messages_total{exchange=\"pipeline\"} 40\n\
             lienthong_published_messages_total{exchange=\"events\"} 70\n",
        )
        .expect("parse");
        let after = Snapshot::parse(
            "lienthong_published_messages_total{exchange=\"pipeline\"} 40\n\
             lienthong_published_messages_total{exchange=\"events\"} 100\n\
             lienthong_message_handling_seconds_sum{queue=\"lt.ledger\"} 0.5\n",
        )
        .expect("parse");
        let name = "lienthong_published_messages_total";
        assert_eq!(increase(&before, &after, name, &[]), 30.0);
        assert_eq!(
            increase(&before, &after, name, &[("exchange", "events")]),
            30.0
        );
        assert_eq!(
            increase(&before, &after, name, &[("exchange", "pipeline")]),
            0.0
        );
        assert_eq!(
            label_values(&after, name, "exchange"),
            ["events", "pipeline"]
        );
    }
}
