//! What the pipeline's job types share, one concern per file:
//!
//! - [`context`]: the engines, the store and the settings every pipeline job runs with
//!   ([`context::Pipeline`]), the job's input media, scratch directories, errors turned
//!   into queue decisions, reading segment results;
//! - [`speech`]: speech media (video and audio): the plan that cuts at silences, hearing a
//!   window, what a speech segment records, the cues built from the records;
//! - [`dub`]: dubbing a window and joining the dubbed windows into a track;
//! - [`cues`]: subtitle inputs: reading, parsing and batching their cues;
//! - [`output`]: a job's output files and the media row that records them.

pub mod context;
pub mod cues;
pub mod dub;
pub mod output;
pub mod speech;
