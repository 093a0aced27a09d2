//! The states of the two state machines (README, "State machines"), spelled as SQL stores
//! them: `jobs.status` (the `job_status` enum of the seed data model) and
//! `job_segments.status` (text, checked by `job_segments_status_check`).

use postgres_types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use serde::{Deserialize, Serialize};
use std::error::Error as StdError;

/// Declares a status enum with its list, its SQL spelling, parsing, display and the
/// conversions from and to SQL text (and the SQL enum type `sql_type`).
macro_rules! statuses {
    ($(#[$doc:meta])* $name:ident ($sql_type:literal, $what:literal) {
        $($(#[$vdoc:meta])* $variant:ident => $text:literal,)*
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every status, in the seed data model's order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// As SQL spells it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// Every status, comma-separated, for messages that list them.
            pub fn names() -> String {
                $name::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Compares with SQL's spelling, as a row read as text or JSON gives it.
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<$name, String> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|s| s.as_str() == text)
                    .ok_or_else(|| format!(
                        "`{}` is not a {} (one of {})",
                        text.escape_default(),
                        $what,
                        $name::names()
                    ))
            }
        }

        impl<'a> FromSql<'a> for $name {
            fn from_sql(_: &Type, raw: &'a [u8]) -> Result<$name, Box<dyn StdError + Sync + Send>> {
                Ok(std::str::from_utf8(raw)?.parse::<$name>()?)
            }

            fn accepts(ty: &Type) -> bool {
                ty.name() == $sql_type || <&str as FromSql>::accepts(ty)
            }
        }

        impl ToSql for $name {
            fn to_sql(
                &self,
                ty: &Type,
                out: &mut bytes::BytesMut,
            ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
                self.as_str().to_sql(ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                ty.name() == $sql_type || <&str as ToSql>::accepts(ty)
            }

            to_sql_checked!();
        }
    };
}

statuses! {
    /// Where a job is (`jobs.status`).
    JobStatus ("job_status", "job status") {
        /// Created but not yet queued (the seed's default; Octavia creates jobs `queued`).
        Pending => "pending",
        /// Waiting for a worker to plan it.
        Queued => "queued",
        /// Planned, or being planned, run or finalized.
        Running => "running",
        /// A step or segment ran out of attempts or failed fatally; refunded.
        Failed => "failed",
        /// Finalized: its output is recorded.
        Completed => "completed",
        /// Cancelled; refunded.
        Cancelled => "cancelled",
    }
}

statuses! {
    /// Where a segment is (`job_segments.status`).
    SegmentStatus ("text", "segment status") {
        /// Waiting to be claimed (or for its retry delay).
        Pending => "pending",
        /// Leased to a worker.
        Running => "running",
        /// Its result is recorded; it never runs again.
        Completed => "completed",
        /// Out of attempts, or failed fatally.
        Failed => "failed",
        /// Its job was cancelled or failed before it ran.
        Cancelled => "cancelled",
    }
}

impl JobStatus {
    /// Statuses a job never leaves by itself (a retry starts a new run).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_back_and_serialize_as_sql_spells_them() {
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>(), Ok(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in SegmentStatus::ALL {
            assert_eq!(s.as_str().parse::<SegmentStatus>(), Ok(*s));
        }
        assert_eq!(
            JobStatus::names(),
            "pending, queued, running, failed, completed, cancelled"
        );
        let e = "done".parse::<SegmentStatus>().unwrap_err();
        assert!(e.contains("`done` is not a segment status"), "{e}");
        assert!(!JobStatus::Running.is_terminal() && JobStatus::Cancelled.is_terminal());
    }
}
