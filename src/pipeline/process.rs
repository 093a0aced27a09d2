//! Running the pipeline's external programs: one place that spawns them, kills them when
//! their caller gives up, and turns failures into errors that carry the program's stderr.

use super::{PipelineError, Result};
use std::ffi::OsStr;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// An external program and the Debian package that provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    pub program: &'static str,
    pub package: &'static str,
}

pub const FFMPEG: Tool = Tool {
    program: "ffmpeg",
    package: "ffmpeg",
};
pub const FFPROBE: Tool = Tool {
    program: "ffprobe",
    package: "ffmpeg",
};
pub const ESPEAK: Tool = Tool {
    program: "espeak-ng",
    package: "espeak-ng",
};
pub const POCKETSPHINX: Tool = Tool {
    program: "pocketsphinx_continuous",
    package: "pocketsphinx",
};
pub const APERTIUM: Tool = Tool {
    program: "apertium",
    package: "apertium",
};

/// How much of a failed program's stderr an error keeps: its end says what went wrong.
const STDERR_TAIL_BYTES: usize = 1500;

/// Kills the child's whole process group unless disarmed. `apertium` is a shell script
/// running a pipeline of programs, so killing the direct child alone would leave its
/// pipeline running after a cancelled job.
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // SAFETY: kill(2) with a negative pid signals a process group; the group is the
            // child's own (process_group(0)), so nothing else is hit.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// Whether `tool` can be started on this machine (it is on PATH and executable).
pub fn installed(tool: &Tool) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        let candidate = dir.join(tool.program);
        std::fs::metadata(&candidate)
            .map(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
            .unwrap_or(false)
    })
}

/// Runs `tool` with `args`, feeding it `stdin`, and returns its stdout.
///
/// A non-zero exit is [`PipelineError::ToolFailed`] with the end of stderr. If the
/// returned future is dropped (the job was cancelled or timed out) the program and
/// everything it started is killed.
#[tracing::instrument(name = "engine", skip_all, fields(otel.name = tool.program, engine = tool.program))]
pub async fn run<I, S>(tool: &Tool, args: I, stdin: Option<Vec<u8>>) -> Result<Vec<u8>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = tokio::process::Command::new(tool.program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => PipelineError::ToolMissing {
            program: tool.program,
            package: tool.package,
        },
        _ => PipelineError::io(format!("cannot start `{}`", tool.program), e),
    })?;
    let mut guard = GroupGuard(child.id().map(|id| id as i32));

    let input = child.stdin.take();
    let feed = async move {
        if let (Some(mut pipe), Some(bytes)) = (input, stdin) {
            // A program that exits without reading all of its input closes the pipe; its
            // exit status, not this write, says whether that was a failure.
            let _ = pipe.write_all(&bytes).await;
            let _ = pipe.shutdown().await;
        }
    };
    let ((), output) = tokio::join!(feed, child.wait_with_output());
    let output =
        output.map_err(|e| PipelineError::io(format!("waiting for `{}`", tool.program), e))?;
    // The child has been reaped, so its pid may be reused: never signal the group now.
    // (A script's pipeline members have ended by then, as the script waits for them.)
    guard.0 = None;

    if !output.status.success() {
        return Err(PipelineError::ToolFailed {
            program: tool.program,
            status: output.status.to_string(),
            stderr: tail(&output.stderr),
        });
    }
    Ok(output.stdout)
}

/// The last part of a program's stderr, trimmed to whole lines where possible.
pub fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.len() <= STDERR_TAIL_BYTES {
        return text.to_string();
    }
    let mut start = text.len() - STDERR_TAIL_BYTES;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    let cut = cut.split_once('\n').map(|(_, rest)| rest).unwrap_or(cut);
    format!("…{cut}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_program_names_its_package() {
        let tool = Tool {
            program: "octavia-no-such-program",
            package: "octavia-pkg",
        };
        let e = run(&tool, ["x"], None).await.unwrap_err();
        assert!(matches!(e, PipelineError::ToolMissing { .. }));
        assert!(
            e.to_string().contains("apt-get install -y octavia-pkg"),
            "{e}"
        );
        assert!(!installed(&tool));
    }

    #[tokio::test]
    async fn a_failure_carries_the_end_of_stderr() {
        let sh = Tool {
            program: "sh",
            package: "dash",
        };
        let e = run(
            &sh,
            ["-c", "echo first >&2; echo last words >&2; exit 3"],
            None,
        )
        .await
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("last words") && text.contains('3'), "{text}");
        assert!(e.is_retryable());
        let out = run(&sh, ["-c", "cat"], Some(b"fed".to_vec()))
            .await
            .unwrap();
        assert_eq!(out, b"fed");
    }

    #[tokio::test]
    async fn a_cancelled_run_kills_everything_the_program_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let sh = Tool {
            program: "sh",
            package: "dash",
        };
        // Like apertium: a script whose work is done by a program it starts.
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let run = run(&sh, ["-c", script.as_str()], None);
        let cancelled = tokio::time::timeout(std::time::Duration::from_millis(300), run).await;
        assert!(cancelled.is_err(), "the run was cancelled");
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let alive = || {
            // /proc/PID/stat's third field is the state; a zombie (Z) has ended.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    !s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(false)
        };
        for _ in 0..100 {
            if !alive() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("the script's child {pid} outlived the cancelled run");
    }

    #[test]
    fn tail_keeps_the_end() {
        let long = format!("{}\nthe end", "x".repeat(5000));
        let t = tail(long.as_bytes());
        assert!(t.ends_with("the end") && t.len() < 1600, "{t}");
    }
}
