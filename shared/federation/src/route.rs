use lienthong_store::Agency;

use crate::FederationConfig;

/// Where one recipient's copy goes from this bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The agency is served here.
    Here,
    /// To a peer bus, and why that one (for the trace).
    Peer { bus: String, why: String },
    /// Nowhere: the reason the copy fails.
    Unroutable(String),
}

impl FederationConfig {
    /// Whether an agency whose registry `bus` is `bus` is served here.
    pub fn serves(&self, bus: Option<&str>) -> bool {
        bus.is_none_or(|b| b.is_empty() || b == self.bus)
    }

    /// The route for a recipient the registry knows as `agency` (`None`: not in this bus's
    /// registry), for a document that has passed `via` (origin first). A bus the document has
    /// passed is never chosen again (a loop), nor is any bus once `hop_limit` buses are behind it.
    pub fn route(&self, agency: Option<&Agency>, via: &[String]) -> Route {
        let (next, why) = match agency.map(|a| a.bus.as_deref()) {
            Some(bus) if self.serves(bus) => return Route::Here,
            Some(Some(target)) => {
                if let Some(p) = self.peer(target) {
                    (p, format!("{target} serves it"))
                } else if let Some(p) = self
                    .peers
                    .iter()
                    .find(|p| p.reaches.iter().any(|r| r == target))
                {
                    (p, format!("{target} serves it, reached through {}", p.bus))
                } else if let Some(p) = self.parent() {
                    (
                        p,
                        format!("{target} serves it, reached through the parent bus"),
                    )
                } else {
                    return Route::Unroutable(format!(
                        "bus {target} serves the recipient and this bus ({}) has no link to it",
                        self.bus
                    ));
                }
            }
            // Unreachable: `serves(None)` is true.
            Some(None) => return Route::Here,
            None => match self.parent() {
                Some(p) => (
                    p,
                    "not in this bus's registry: to the parent bus".to_owned(),
                ),
                None => {
                    return Route::Unroutable(format!(
                        "the recipient is not in the registry of bus {}, which has no parent bus",
                        self.bus
                    ));
                }
            },
        };
        if let Some(i) = via.iter().position(|b| *b == next.bus) {
            let mut way = via[i..].to_vec();
            way.push(self.bus.clone());
            way.push(next.bus.clone());
            return Route::Unroutable(format!(
                "routing loop: {} ({why}); the registries of these buses disagree on who serves the recipient",
                way.join(" -> ")
            ));
        }
        if via.len() + 1 >= self.hop_limit {
            return Route::Unroutable(format!(
                "hop limit reached: {} buses passed ({} -> {}), federation.hop_limit is {}",
                via.len() + 1,
                via.join(" -> "),
                self.bus,
                self.hop_limit
            ));
        }
        Route::Peer {
            bus: next.bus.clone(),
            why,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PeerConfig;
    use lienthong_store::Level;

    fn peer(bus: &str, parent: bool, reaches: &[&str]) -> PeerConfig {
        PeerConfig {
            bus: bus.into(),
            url: format!("amqp://127.0.0.1/{bus}"),
            prefix: "lienthong".into(),
            parent,
            reaches: reaches.iter().map(|r| (*r).to_owned()).collect(),
            tls: None,
        }
    }

    fn agency(bus: Option<&str>) -> Agency {
        Agency {
            bus: bus.map(str::to_owned),
            ..Agency::new("000.12.05.H49", "UBND xã", Level::Commune)
        }
    }

    fn province() -> FederationConfig {
        let mut c = FederationConfig::new("tinh-a");
        c.peers = vec![
            peer("quoc-gia", true, &[]),
            peer("tinh-c", false, &["tinh-d"]),
        ];
        c
    }

    fn to(bus: &str) -> Route {
        Route::Peer {
            bus: bus.into(),
            why: String::new(),
        }
    }

    fn without_why(r: Route) -> Route {
        match r {
            Route::Peer { bus, .. } => to(&bus),
            other => other,
        }
    }

    #[test]
    fn a_province_serves_its_own_and_sends_the_rest_the_shortest_known_way() {
        let c = province();
        assert_eq!(c.route(Some(&agency(None)), &[]), Route::Here);
        assert_eq!(c.route(Some(&agency(Some("tinh-a"))), &[]), Route::Here);
        assert_eq!(c.route(Some(&agency(Some(""))), &[]), Route::Here);
        // A peer by name, a bus a peer reaches, anything else to the parent.
        assert_eq!(
            without_why(c.route(Some(&agency(Some("tinh-c"))), &[])),
            to("tinh-c")
        );
        assert_eq!(
            without_why(c.route(Some(&agency(Some("tinh-d"))), &[])),
            to("tinh-c")
        );
        assert_eq!(
            without_why(c.route(Some(&agency(Some("tinh-b"))), &[])),
            to("quoc-gia")
        );
        // Not in the registry: the parent knows more.
        let Route::Peer { bus, why } = c.route(None, &[]) else {
            panic!("to the parent");
        };
        assert_eq!(bus, "quoc-gia");
        assert!(why.contains("not in this bus's registry"), "{why}");
    }

    #[test]
    fn the_national_bus_has_no_parent_so_an_unknown_recipient_fails_with_the_reason() {
        let mut national = FederationConfig::new("quoc-gia");
        national.peers = vec![peer("tinh-a", false, &[]), peer("tinh-b", false, &[])];
        assert_eq!(
            without_why(national.route(Some(&agency(Some("tinh-b"))), &["tinh-a".into()])),
            to("tinh-b")
        );
        let Route::Unroutable(why) = national.route(None, &["tinh-a".into()]) else {
            panic!("unroutable");
        };
        assert!(why.contains("not in the registry of bus quoc-gia"), "{why}");
        let Route::Unroutable(why) = national.route(Some(&agency(Some("tinh-z"))), &[]) else {
            panic!("unroutable");
        };
        assert!(why.contains("no link to it"), "{why}");
    }

    #[test]
    fn a_bus_already_passed_is_a_loop_and_the_hop_limit_stops_long_ways() {
        let c = province();
        // The national bus sent it here for an agency this registry gives back to the nation.
        let Route::Unroutable(why) = c.route(
            Some(&agency(Some("tinh-b"))),
            &["tinh-b".into(), "quoc-gia".into()],
        ) else {
            panic!("loop");
        };
        assert!(
            why.starts_with("routing loop: quoc-gia -> tinh-a -> quoc-gia"),
            "{why}"
        );
        let mut short = province();
        short.hop_limit = 3;
        let via = vec!["tinh-x".to_owned(), "tinh-y".to_owned()];
        let Route::Unroutable(why) = short.route(Some(&agency(Some("tinh-c"))), &via) else {
            panic!("hop limit");
        };
        assert!(
            why.starts_with("hop limit reached: 3 buses passed"),
            "{why}"
        );
        assert_eq!(
            without_why(short.route(Some(&agency(Some("tinh-c"))), &via[..1])),
            to("tinh-c")
        );
    }
}
