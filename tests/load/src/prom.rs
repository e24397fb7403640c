//! The bus's own figures over a run: its `/metrics` read before and after, and the difference.

use std::collections::BTreeMap;

/// One scrape of one or more `/metrics` endpoints: every sample, summed across endpoints.
#[derive(Debug, Default, Clone)]
pub struct Scrape {
    samples: BTreeMap<(String, String), f64>,
}

impl Scrape {
    /// Reads Prometheus text; comments and lines that are not samples are skipped.
    #[cfg(test)]
    pub fn parse(text: &str) -> Self {
        let mut s = Self::default();
        s.add(text);
        s
    }

    fn add(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = match line.rsplit_once(' ') {
                Some(x) => x,
                None => continue,
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.trim_end_matches('}')),
                None => (series, ""),
            };
            *self
                .samples
                .entry((name.to_owned(), labels.to_owned()))
                .or_default() += value;
        }
    }

    /// Scrapes every URL (an unreachable one is an error naming it).
    pub async fn fetch(http: &reqwest::Client, urls: &[String]) -> anyhow::Result<Self> {
        let mut s = Self::default();
        for url in urls {
            let text = http
                .get(url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| anyhow::anyhow!("--metrics {url}: {e}"))?
                .text()
                .await?;
            s.add(&text);
        }
        Ok(s)
    }

    /// The sum of `name` over every series whose labels contain each `key="value"` of `filter`.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|((n, labels), _)| {
                n == name
                    && filter
                        .iter()
                        .all(|(k, v)| labels.split(',').any(|l| l == format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// The values of label `key` among the series of `name`.
    pub fn label_values(&self, name: &str, key: &str) -> Vec<String> {
        let prefix = format!("{key}=\"");
        let mut values: Vec<String> = self
            .samples
            .keys()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, labels)| {
                labels
                    .split(',')
                    .find_map(|l| l.strip_prefix(&prefix))
                    .map(|v| v.trim_end_matches('"').to_owned())
            })
            .collect();
        values.sort();
        values.dedup();
        values
    }
}

/// The increase of a sum between two scrapes (a restart in between reads as no increase).
pub fn increase(before: &Scrape, after: &Scrape, name: &str, filter: &[(&str, &str)]) -> f64 {
    (after.sum(name, filter) - before.sum(name, filter)).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE lienthong_published_messages_total counter
lienthong_published_messages_total{exchange="pipeline"} 40
lienthong_published_messages_total{exchange="events"} 70
lienthong_message_handling_seconds_sum{queue="lt.stage.verifier"} 1.5
lienthong_message_handling_seconds_count{queue="lt.stage.verifier"} 10
lienthong_message_handling_seconds_sum{queue="lt.ledger"} 0.5
not a sample
"#;

    #[test]
    fn sums_filters_and_differences() {
        let before = Scrape::parse(TEXT);
        let mut after = Scrape::parse(TEXT);
        after.add("lienthong_published_messages_total{exchange=\"events\"} 30\n");
        assert_eq!(after.sum("lienthong_published_messages_total", &[]), 140.0);
        assert_eq!(
            increase(
                &before,
                &after,
                "lienthong_published_messages_total",
                &[("exchange", "events")]
            ),
            30.0
        );
        assert_eq!(
            after.label_values("lienthong_message_handling_seconds_sum", "queue"),
            ["lt.ledger", "lt.stage.verifier"]
        );
        assert_eq!(
            after.sum(
                "lienthong_message_handling_seconds_count",
                &[("queue", "lt.stage.verifier")]
            ),
            10.0
        );
    }
}
