//! Fault injection: rules that add latency, fail a share of requests, answer bursts of 429s with
//! `Retry-After`, or drop connections, per route. Rules come from flags at start and can be
//! replaced at runtime through the admin API.
//!
//! A route is named `METHOD /path/template` (the template as routed, e.g.
//! `GET /secrets/{name}/{version}`). A rule's `route` is `*` (everything), a path pattern
//! (`/secrets/*`), or a method and a path pattern (`GET /secrets/*`); a trailing `*` matches any
//! rest. The first rule that matches a request decides for it.

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// `Retry-After` on injected 429s when the rule names none.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 1;

/// Longest latency a rule may add (keeps a typo from hanging a test run for hours).
pub const MAX_LATENCY_MS: u64 = 60_000;

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    /// Which requests: `*`, `/path/*`, or `METHOD /path/*`.
    #[serde(default = "any_route")]
    pub route: String,
    /// Milliseconds added before the request is handled.
    #[serde(default)]
    pub latency_ms: u64,
    /// Share (0 to 1) of requests answered with `error_status`.
    #[serde(default)]
    pub error_rate: f64,
    /// Status of injected errors (default 503).
    #[serde(default = "default_error_status")]
    pub error_status: u16,
    /// Share (0 to 1) of requests whose connection is dropped without an answer.
    #[serde(default)]
    pub drop_rate: f64,
    /// The next this-many matching requests answer 429 Throttled (counts down).
    #[serde(default)]
    pub throttle_count: u64,
    /// Share (0 to 1) of requests answered 429 Throttled.
    #[serde(default)]
    pub throttle_rate: f64,
    /// `Retry-After` seconds on 429s.
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u64,
}

fn any_route() -> String {
    "*".into()
}

fn default_error_status() -> u16 {
    503
}

fn default_retry_after() -> u64 {
    DEFAULT_RETRY_AFTER_SECS
}

impl Default for FaultRule {
    fn default() -> Self {
        Self {
            route: any_route(),
            latency_ms: 0,
            error_rate: 0.0,
            error_status: default_error_status(),
            drop_rate: 0.0,
            throttle_count: 0,
            throttle_rate: 0.0,
            retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
        }
    }
}

/// Why a rule is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// A `--fault` spec that does not parse.
    #[error("invalid fault spec {spec:?}: {reason}")]
    Spec {
        /// The spec.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// A rate outside 0..=1, a latency above the cap, or an error status outside 400..=599.
    #[error("invalid fault rule for route {route:?}: {reason}")]
    Rule {
        /// The rule's route.
        route: String,
        /// What is wrong.
        reason: String,
    },
}

impl FaultRule {
    /// Parses a command-line spec: `ROUTE:key=value,key=value`, keys `latencyMs`, `errorRate`,
    /// `errorStatus`, `dropRate`, `throttleCount`, `throttleRate`, `retryAfterSecs`.
    /// Example: `GET /secrets/*:latencyMs=50,errorRate=0.1`.
    pub fn parse_spec(spec: &str) -> Result<Self, FaultError> {
        let bad = |reason: &str| FaultError::Spec {
            spec: spec.to_owned(),
            reason: reason.to_owned(),
        };
        let (route, settings) = spec
            .rsplit_once(':')
            .ok_or_else(|| bad("expected ROUTE:key=value,..."))?;
        let mut rule = FaultRule {
            route: route.trim().to_owned(),
            ..FaultRule::default()
        };
        for kv in settings.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| bad("expected key=value"))?;
            let num = |v: &str| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| bad("expected a whole number"))
            };
            let rate = |v: &str| {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| bad("expected a number"))
            };
            match k.trim() {
                "latencyMs" => rule.latency_ms = num(v)?,
                "errorRate" => rule.error_rate = rate(v)?,
                "errorStatus" => {
                    rule.error_status = u16::try_from(num(v)?).map_err(|_| bad("bad status"))?;
                }
                "dropRate" => rule.drop_rate = rate(v)?,
                "throttleCount" => rule.throttle_count = num(v)?,
                "throttleRate" => rule.throttle_rate = rate(v)?,
                "retryAfterSecs" => rule.retry_after_secs = num(v)?,
                _ => return Err(bad("unknown key")),
            }
        }
        rule.check()?;
        Ok(rule)
    }

    /// Checks ranges.
    pub fn check(&self) -> Result<(), FaultError> {
        let bad = |reason: &str| FaultError::Rule {
            route: self.route.clone(),
            reason: reason.to_owned(),
        };
        for r in [self.error_rate, self.drop_rate, self.throttle_rate] {
            if !(0.0..=1.0).contains(&r) {
                return Err(bad("rates must be between 0 and 1"));
            }
        }
        if self.latency_ms > MAX_LATENCY_MS {
            return Err(bad("latencyMs may be at most 60000"));
        }
        if !(400..=599).contains(&self.error_status) {
            return Err(bad("errorStatus must be between 400 and 599"));
        }
        Ok(())
    }

    /// True when the rule applies to `method` + `path` (the route template).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let pattern = self.route.trim();
        if pattern == "*" {
            return true;
        }
        let (m, p) = match pattern.split_once(' ') {
            Some((m, p)) => (Some(m), p.trim()),
            None => (None, pattern),
        };
        if m.is_some_and(|m| !m.eq_ignore_ascii_case(method)) {
            return false;
        }
        match p.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => p == path,
        }
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Handle it (after `latency`).
    Pass,
    /// Answer with this status.
    Error(u16),
    /// Answer 429 with this `Retry-After`.
    Throttle(u64),
    /// Drop the connection.
    Drop,
}

/// The rules in force.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
}

impl Faults {
    /// Faults with these rules.
    pub fn new(rules: Vec<FaultRule>) -> Self {
        Self {
            rules: Mutex::new(rules),
        }
    }

    /// The rules now in force (throttle counts as they stand).
    pub fn rules(&self) -> Vec<FaultRule> {
        self.rules.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Replaces every rule.
    pub fn replace(&self, rules: Vec<FaultRule>) -> Result<(), FaultError> {
        for r in &rules {
            r.check()?;
        }
        if let Ok(mut current) = self.rules.lock() {
            *current = rules;
        }
        Ok(())
    }

    /// Decides for one request; returns the added latency and the decision.
    pub fn decide(&self, method: &str, path: &str) -> (Duration, Decision) {
        let Ok(mut rules) = self.rules.lock() else {
            return (Duration::ZERO, Decision::Pass);
        };
        let Some(rule) = rules.iter_mut().find(|r| r.matches(method, path)) else {
            return (Duration::ZERO, Decision::Pass);
        };
        let latency = Duration::from_millis(rule.latency_ms.min(MAX_LATENCY_MS));
        let mut rng = rand::rng();
        let decision = if rule.throttle_count > 0 {
            rule.throttle_count -= 1;
            Decision::Throttle(rule.retry_after_secs)
        } else if rule.throttle_rate > 0.0 && rng.random_bool(rule.throttle_rate) {
            Decision::Throttle(rule.retry_after_secs)
        } else if rule.drop_rate > 0.0 && rng.random_bool(rule.drop_rate) {
            Decision::Drop
        } else if rule.error_rate > 0.0 && rng.random_bool(rule.error_rate) {
            Decision::Error(rule.error_status)
        } else {
            Decision::Pass
        };
        (latency, decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_into_rules_and_bad_ones_are_refused() {
        let r =
            FaultRule::parse_spec("GET /secrets/*:latencyMs=50,errorRate=0.25,retryAfterSecs=3")
                .expect("spec");
        assert_eq!(r.route, "GET /secrets/*");
        assert_eq!(
            (r.latency_ms, r.error_rate, r.retry_after_secs),
            (50, 0.25, 3)
        );
        assert!(FaultRule::parse_spec("*:errorRate=2").is_err());
        assert!(FaultRule::parse_spec("*:bogus=1").is_err());
        assert!(FaultRule::parse_spec("no-settings").is_err());
    }

    #[test]
    fn routes_match_by_method_and_path_pattern() {
        let rule = |route: &str| FaultRule {
            route: route.into(),
            ..FaultRule::default()
        };
        assert!(rule("*").matches("PUT", "/secrets/{name}"));
        assert!(rule("/secrets/*").matches("GET", "/secrets/{name}/{version}"));
        assert!(rule("get /secrets/*").matches("GET", "/secrets/{name}"));
        assert!(!rule("GET /secrets/*").matches("PUT", "/secrets/{name}"));
        assert!(!rule("/keys/*").matches("GET", "/secrets/{name}"));
        assert!(rule("GET /keys/{name}").matches("GET", "/keys/{name}"));
        assert!(!rule("GET /keys/{name}").matches("GET", "/keys/{name}/"));
    }

    #[test]
    fn a_throttle_burst_answers_exactly_its_count_then_passes() {
        let faults = Faults::new(vec![FaultRule {
            route: "/secrets/*".into(),
            throttle_count: 2,
            retry_after_secs: 7,
            ..FaultRule::default()
        }]);
        let seen: Vec<Decision> = (0..3)
            .map(|_| faults.decide("GET", "/secrets/{name}").1)
            .collect();
        assert_eq!(
            seen,
            vec![Decision::Throttle(7), Decision::Throttle(7), Decision::Pass]
        );
        assert_eq!(faults.decide("GET", "/keys/{name}").1, Decision::Pass);
    }

    #[test]
    fn certain_rates_always_fire_and_zero_rates_never_do() {
        let always = Faults::new(vec![FaultRule {
            error_rate: 1.0,
            error_status: 500,
            latency_ms: 5,
            ..FaultRule::default()
        }]);
        assert_eq!(
            always.decide("GET", "/x"),
            (Duration::from_millis(5), Decision::Error(500))
        );
        let drop = Faults::new(vec![FaultRule {
            drop_rate: 1.0,
            ..FaultRule::default()
        }]);
        assert_eq!(drop.decide("GET", "/x").1, Decision::Drop);
        let never = Faults::new(vec![FaultRule::default()]);
        for _ in 0..100 {
            assert_eq!(never.decide("GET", "/x").1, Decision::Pass);
        }
    }
}
