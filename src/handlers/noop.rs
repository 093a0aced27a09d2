//! `noop`: a diagnostic job type for tests, benchmarks and operators checking a
//! deployment. It does no work but behaves like real work on the queue.
//!
//! Options (all optional):
//! - `segments` (default 1): how many segments the plan creates;
//! - `segment_ms` (default 0): how long each segment attempt takes;
//! - `fail_rate` (default 0): chance that a segment attempt fails, retryably;
//! - `fail_segments` (default []): segment indexes that always fail, fatally.
//!
//! A job of one segment that does not sleep runs whole ([`Handler::runs_whole`]).

use crate::queue::complete::{NewMedia, NewSegment};
use crate::worker::{Handler, HandlerError, Plan, SegmentContext, StepContext};
use async_trait::async_trait;
use rand::RngExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

pub struct Noop;

/// The most segments one noop job may ask for.
const MAX_SEGMENTS: u32 = 1_000_000;

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoopOptions {
    pub segments: u32,
    pub segment_ms: u64,
    pub fail_rate: f64,
    pub fail_segments: Vec<i32>,
}

impl Default for NoopOptions {
    fn default() -> Self {
        NoopOptions {
            segments: 1,
            segment_ms: 0,
            fail_rate: 0.0,
            fail_segments: Vec::new(),
        }
    }
}

impl NoopOptions {
    /// The input of each segment the plan creates. Each segment carries what it needs, so
    /// running it reads nothing else; options left at their defaults are left out (a
    /// segment reads a missing one as its default), so the segments of a plain no-op job
    /// carry `{}`: every segment's input is parsed by PostgreSQL when inserted and by the
    /// worker when claimed.
    pub fn segment_input(&self) -> Value {
        let mut input = serde_json::Map::new();
        if self.segment_ms != 0 {
            input.insert("segment_ms".into(), json!(self.segment_ms));
        }
        if self.fail_rate != 0.0 {
            input.insert("fail_rate".into(), json!(self.fail_rate));
        }
        if !self.fail_segments.is_empty() {
            input.insert("fail_segments".into(), json!(self.fail_segments));
        }
        Value::Object(input)
    }

    /// Parses and checks options; the message names the bad option.
    pub fn parse(options: &Value) -> Result<NoopOptions, String> {
        let parsed: NoopOptions = if options.is_null() {
            NoopOptions::default()
        } else {
            serde_json::from_value(options.clone()).map_err(|e| format!("noop options: {e}"))?
        };
        if parsed.segments > MAX_SEGMENTS {
            return Err(format!(
                "noop options: segments must be at most {MAX_SEGMENTS}"
            ));
        }
        if !(0.0..=1.0).contains(&parsed.fail_rate) {
            return Err("noop options: fail_rate must be between 0 and 1".into());
        }
        Ok(parsed)
    }
}

#[async_trait]
impl Handler for Noop {
    fn job_type(&self) -> &'static str {
        "noop"
    }

    async fn plan(&self, ctx: &StepContext) -> Result<Plan, HandlerError> {
        let options = NoopOptions::parse(&ctx.job.options).map_err(HandlerError::Fatal)?;
        let input = options.segment_input();
        Ok(Plan {
            segments: (0..options.segments)
                .map(|_| NewSegment {
                    start_ms: None,
                    end_ms: None,
                    input: input.clone(),
                })
                .collect(),
            data: json!({ "segments": options.segments }),
        })
    }

    /// A segment that does not sleep is over before anyone could watch it run.
    fn runs_whole(&self, plan: &Plan) -> bool {
        plan.segments
            .iter()
            .all(|s| s.input["segment_ms"].as_u64().unwrap_or(0) == 0)
    }

    async fn run_segment(&self, ctx: &SegmentContext) -> Result<Value, HandlerError> {
        let input = &ctx.segment.input;
        let segment_ms = input["segment_ms"].as_u64().unwrap_or(0);
        let fail_rate = input["fail_rate"].as_f64().unwrap_or(0.0);
        let fatal = input["fail_segments"].as_array().is_some_and(|a| {
            a.iter()
                .any(|i| i.as_i64() == Some(ctx.segment.index as i64))
        });
        if segment_ms > 0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(segment_ms)) => {}
                _ = ctx.cancel.cancelled() => return Err(HandlerError::Cancelled),
            }
        }
        if fatal {
            return Err(HandlerError::Fatal(format!(
                "segment {} is listed in fail_segments",
                ctx.segment.index
            )));
        }
        if fail_rate > 0.0 && rand::rng().random_bool(fail_rate) {
            return Err(HandlerError::Retryable(format!(
                "simulated failure (fail_rate {fail_rate})"
            )));
        }
        Ok(json!({ "index": ctx.segment.index, "attempt": ctx.segment.attempt }))
    }

    async fn finalize(&self, _ctx: &StepContext) -> Result<Option<NewMedia>, HandlerError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_input_carries_only_options_off_their_defaults() {
        assert_eq!(NoopOptions::default().segment_input(), json!({}));
        let options = NoopOptions::parse(&json!({
            "segments": 3, "segment_ms": 5, "fail_rate": 0.5, "fail_segments": [2]
        }))
        .unwrap();
        assert_eq!(
            options.segment_input(),
            json!({ "segment_ms": 5, "fail_rate": 0.5, "fail_segments": [2] })
        );
        let sleepy = NoopOptions::parse(&json!({ "segment_ms": 7 })).unwrap();
        assert_eq!(sleepy.segment_input(), json!({ "segment_ms": 7 }));
    }
}
