//! The job model: what the queue, the worker, the job types and the API all speak of, and
//! nothing that runs. Everyone imports it; it imports none of them (as River's
//! `rivertype` sits below its client and workers).
//!
//! - [`JobType`]: the product's catalogue of job types: name, accepted inputs, whether it
//!   runs the pipeline, its [`options`];
//! - [`JobStatus`], [`SegmentStatus`]: the states of the two state machines, as SQL
//!   spells them;
//! - what a worker holds ([`ClaimedStep`], [`ClaimedSegment`], [`JobInfo`], [`Step`]),
//!   what a plan creates ([`NewSegment`]) and a finalize records ([`NewMedia`]);
//! - how jobs and segments are reported ([`JobView`], [`SegmentView`], [`transcript`]).

mod job_type;
mod leased;
mod media;
pub mod options;
pub mod options_schema;
mod status;
pub mod transcript;
mod view;

pub use job_type::JobType;
pub use leased::{ClaimedSegment, ClaimedStep, JobInfo, Step};
pub use media::{MediaType, NewMedia, OutputFile, output_files};
pub use status::{JobStatus, SegmentStatus};
pub use view::{JobView, SegmentView};

/// A segment the plan step creates.
#[derive(Debug, Clone, Default)]
pub struct NewSegment {
    pub start_ms: Option<i32>,
    pub end_ms: Option<i32>,
    /// The segment's parameters: everything its run needs (`job_segments.input`).
    pub input: serde_json::Value,
}
