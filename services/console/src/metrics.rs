//! Reading the services' Prometheus metrics for the live overview: the text exposition format
//! parsed into samples, several processes summed, and from two readings the rates, the error
//! share and the latency percentiles, as Prometheus would compute them. Pure: no IO.

use std::collections::BTreeMap;

/// One series: its name and its labels, sorted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Series {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

impl Series {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample of one reading (of one or several processes, summed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub samples: BTreeMap<Series, f64>,
}

impl Snapshot {
    /// Parses the text exposition format; a line that cannot be read is an error naming it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) =
                parse_line(line).ok_or_else(|| format!("line {}: cannot read `{line}`", n + 1))?;
            *out.samples.entry(series).or_insert(0.0) += value;
        }
        Ok(out)
    }

    /// Adds another process's reading (counters and gauges of the same series sum).
    pub fn add(&mut self, other: Snapshot) {
        for (k, v) in other.samples {
            *self.samples.entry(k).or_insert(0.0) += v;
        }
    }

    /// The sum of the series named `name` whose labels `keep` accepts.
    pub fn sum(&self, name: &str, keep: impl Fn(&Series) -> bool) -> f64 {
        self.samples
            .iter()
            .filter(|(s, _)| s.name == name && keep(s))
            .map(|(_, v)| v)
            .sum()
    }

    /// The series named `name`, with their values.
    pub fn each<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a Series, f64)> + 'a {
        self.samples
            .iter()
            .filter(move |(s, _)| s.name == name)
            .map(|(s, v)| (s, *v))
    }

    /// A histogram's cumulative buckets `(le, count)`, summed over its other labels, by `le`.
    pub fn buckets(&self, name: &str) -> Vec<(f64, f64)> {
        let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for (s, v) in self.each(&format!("{name}_bucket")).collect::<Vec<_>>() {
            let Some(le) = s.label("le").and_then(parse_value) else {
                continue;
            };
            let e = by_le.entry(le.to_bits()).or_insert((le, 0.0));
            e.1 += v;
        }
        let mut out: Vec<(f64, f64)> = by_le.into_values().collect();
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}

fn parse_line(line: &str) -> Option<(Series, f64)> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let end: usize;
        loop {
            // Skip separators.
            while let Some((_, c)) = chars.peek() {
                if *c == ',' || c.is_whitespace() {
                    chars.next();
                } else {
                    break;
                }
            }
            match chars.peek() {
                Some((i, '}')) => {
                    end = *i + 1;
                    break;
                }
                None => return None,
                _ => {}
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return None;
            }
            let mut value = String::new();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some(other) => value.push(other),
                        None => return None,
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                return None;
            }
            labels.push((key.trim().to_owned(), value));
        }
        rest = &after[end..];
    }
    let value = parse_value(rest.split_whitespace().next()?)?;
    labels.sort();
    Some((
        Series {
            name: name.to_owned(),
            labels,
        },
        value,
    ))
}

/// How much a counter grew between two readings; a process that restarted (the counter went
/// down) counts from zero, as Prometheus's `increase` does.
pub fn increase(before: f64, after: f64) -> f64 {
    if after >= before {
        after - before
    } else {
        after
    }
}

/// The `q` quantile (0..1) of what a histogram observed between two readings, interpolated
/// within the bucket as `histogram_quantile` does; `None` when nothing was observed.
pub fn quantile(q: f64, before: &[(f64, f64)], after: &[(f64, f64)]) -> Option<f64> {
    let deltas: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            let was = before
                .iter()
                .find(|(l, _)| l.to_bits() == le.to_bits())
                .map_or(0.0, |(_, n)| *n);
            (*le, increase(was, *n))
        })
        .collect();
    let total = deltas.last().map(|(_, n)| *n)?;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower_le = 0.0;
    let mut lower_count = 0.0;
    for (le, count) in &deltas {
        if *count >= rank {
            if le.is_infinite() {
                // Above the highest finite bucket: its bound is the best estimate.
                return Some(lower_le);
            }
            let in_bucket = count - lower_count;
            if in_bucket <= 0.0 {
                return Some(*le);
            }
            return Some(lower_le + (le - lower_le) * (rank - lower_count) / in_bucket);
        }
        lower_le = *le;
        lower_count = *count;
    }
    Some(lower_le)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
# HELP lienthong_documents_accepted_total packages accepted
# TYPE lienthong_documents_accepted_total counter
lienthong_documents_accepted_total{format="edxml",message_type="edoc"} 7
lienthong_documents_accepted_total{message_type="status",format="edxml"} 3
lienthong_queue_messages{queue="lt.stage.router"} 2
lienthong_queue_messages{queue="a \"quoted\", odd\\name"} 1
lienthong_delivery_latency_seconds_bucket{from="system",le="0.05"} 4
lienthong_delivery_latency_seconds_bucket{from="system",le="0.1"} 8
lienthong_delivery_latency_seconds_bucket{from="system",le="+Inf"} 10
lienthong_delivery_latency_seconds_bucket{from="peer",le="0.05"} 0
lienthong_delivery_latency_seconds_bucket{from="peer",le="0.1"} 0
lienthong_delivery_latency_seconds_bucket{from="peer",le="+Inf"} 0
lienthong_build_info 1 1700000000000
"#;

    #[test]
    fn the_exposition_format_is_read_with_escapes_and_summed_across_processes() {
        let s = Snapshot::parse(TEXT).expect("parse");
        assert_eq!(s.sum("lienthong_documents_accepted_total", |_| true), 10.0);
        assert_eq!(
            s.sum("lienthong_documents_accepted_total", |x| x
                .label("message_type")
                == Some("status")),
            3.0
        );
        let odd: Vec<_> = s
            .each("lienthong_queue_messages")
            .filter_map(|(x, _)| x.label("queue").map(str::to_owned))
            .collect();
        assert!(
            odd.contains(&"a \"quoted\", odd\\name".to_owned()),
            "{odd:?}"
        );
        assert_eq!(s.sum("lienthong_build_info", |_| true), 1.0);
        let mut two = s.clone();
        two.add(s.clone());
        assert_eq!(
            two.sum("lienthong_documents_accepted_total", |_| true),
            20.0
        );
        assert_eq!(
            s.buckets("lienthong_delivery_latency_seconds"),
            vec![(0.05, 4.0), (0.1, 8.0), (f64::INFINITY, 10.0)]
        );
        let e = Snapshot::parse("ok 1\nbroken{le=\"1\" 2\n").expect_err("broken");
        assert!(e.starts_with("line 2:"), "{e}");
    }

    #[test]
    fn quantiles_interpolate_within_buckets_like_prometheus() {
        let before = [(0.05, 0.0), (0.1, 0.0), (f64::INFINITY, 0.0)];
        let after = [(0.05, 4.0), (0.1, 8.0), (f64::INFINITY, 10.0)];
        // Rank 5 of 10 lies a quarter into the (0.05, 0.1] bucket.
        let p50 = quantile(0.5, &before, &after).expect("p50");
        assert!((p50 - 0.0625).abs() < 1e-9, "{p50}");
        // Rank 2 of 10 lies half-way into the first bucket.
        let p20 = quantile(0.2, &before, &after).expect("p20");
        assert!((p20 - 0.025).abs() < 1e-9, "{p20}");
        // Beyond the highest finite bound: that bound.
        assert_eq!(quantile(0.99, &before, &after), Some(0.1));
        // Nothing observed in between: no figure.
        assert_eq!(quantile(0.5, &after, &after), None);
        // A restarted process counts from zero.
        assert_eq!(increase(10.0, 3.0), 3.0);
        assert_eq!(increase(3.0, 10.0), 7.0);
    }

    proptest::proptest! {
        #[test]
        fn any_line_either_parses_or_is_refused_without_panicking(line in "\\PC{0,80}") {
            let _ = Snapshot::parse(&line);
        }
    }
}
