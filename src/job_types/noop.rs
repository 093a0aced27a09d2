//! `noop`: a diagnostic job type for tests, benchmarks and operators checking a
//! deployment. It does no work but behaves like real work on the queue.
//!
//! Options ([`NoopOptions`], all optional):
//! - `segments` (default 1): how many segments the plan creates;
//! - `segment_ms` (default 0): how long each segment attempt takes;
//! - `fail_rate` (default 0): chance that a segment attempt fails, retryably;
//! - `fail_segments` (default []): segment indexes that always fail, fatally.
//!
//! A job of one segment that does not sleep runs whole ([`Handler::runs_whole`]).

use crate::job::options::NoopOptions;
use crate::job::{JobType, NewMedia, NewSegment};
use crate::worker::{Handler, HandlerError, Plan, SegmentContext, StepContext};
use async_trait::async_trait;
use rand::RngExt;
use serde_json::{Value, json};
use std::time::Duration;

pub struct Noop;

#[async_trait]
impl Handler for Noop {
    fn job_type(&self) -> &'static str {
        JobType::Noop.name()
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
