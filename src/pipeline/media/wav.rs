//! 16-bit PCM WAV files read and written directly, for the operations that must be exact
//! to the sample: silence, concatenation and placing clips at offsets. ffmpeg's filters
//! work in frames and timestamps; counting samples ourselves leaves no rounding to chance.

use crate::pipeline::{PipelineError, Result};
use std::path::Path;
use tokio::io::{AsyncWriteExt, BufWriter};

/// Sample rate and channel count of 16-bit PCM audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavSpec {
    pub sample_rate: u32,
    pub channels: u16,
}

impl WavSpec {
    /// Bytes per sample frame (one sample of every channel).
    pub fn frame_bytes(self) -> usize {
        2 * self.channels as usize
    }

    /// Sample frames in `ms` milliseconds, rounded to the nearest frame.
    pub fn frames_in(self, ms: u64) -> u64 {
        (ms * self.sample_rate as u64 + 500) / 1000
    }

    /// Milliseconds of `frames` sample frames, rounded to the nearest millisecond.
    pub fn ms_of(self, frames: u64) -> u64 {
        (frames * 1000 + self.sample_rate as u64 / 2) / self.sample_rate as u64
    }
}

/// A whole 16-bit PCM WAV file in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    pub spec: WavSpec,
    /// Interleaved little-endian 16-bit samples, as in the file.
    pub data: Vec<u8>,
}

impl Wav {
    /// Sample frames in the file.
    pub fn frames(&self) -> u64 {
        (self.data.len() / self.spec.frame_bytes()) as u64
    }

    pub fn duration_ms(&self) -> u64 {
        self.spec.ms_of(self.frames())
    }

    /// Reads a 16-bit PCM WAV file; anything else (float, 24-bit, compressed) is refused so
    /// the caller converts it with ffmpeg first.
    pub async fn read(path: &Path) -> Result<Wav> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| PipelineError::io(format!("reading {}", path.display()), e))?;
        Wav::parse(&bytes).map_err(|reason| PipelineError::InvalidMedia {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses a 16-bit PCM WAV file's bytes.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Wav, String> {
        if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
            return Err("not a WAV file (no RIFF/WAVE header)".into());
        }
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let mut spec = None;
        let mut at = 12;
        while at + 8 <= bytes.len() {
            let id = &bytes[at..at + 4];
            let size = u32_at(at + 4) as usize;
            let body = at + 8;
            // A streaming writer may leave the data size at its maximum: take what is there.
            let end = body.saturating_add(size).min(bytes.len());
            match id {
                b"fmt " if size >= 16 && end >= body + 16 => {
                    let format = u16_at(body);
                    let channels = u16_at(body + 2);
                    let sample_rate = u32_at(body + 4);
                    let bits = u16_at(body + 14);
                    // 1 is PCM; 0xFFFE (extensible) is PCM too when its bits say 16.
                    if !(format == 1 || format == 0xFFFE) || bits != 16 {
                        return Err(format!(
                            "WAV audio is not 16-bit PCM (format {format}, {bits} bits)"
                        ));
                    }
                    if channels == 0 || sample_rate == 0 {
                        return Err("WAV header has no channels or no sample rate".into());
                    }
                    spec = Some(WavSpec {
                        sample_rate,
                        channels,
                    });
                }
                b"data" => {
                    let spec = spec.ok_or("WAV data comes before its format")?;
                    let mut data = bytes[body..end].to_vec();
                    data.truncate(data.len() / spec.frame_bytes() * spec.frame_bytes());
                    return Ok(Wav { spec, data });
                }
                _ => {}
            }
            at = body.saturating_add(size).saturating_add(size & 1);
        }
        Err("WAV file has no data".into())
    }

    /// Writes the file, replacing any file at `path`.
    pub async fn write(&self, path: &Path) -> Result<()> {
        let mut out = WavWriter::create(path, self.spec).await?;
        out.write(&self.data).await?;
        out.finish().await
    }
}

/// Writes a 16-bit PCM WAV file piece by piece, so long outputs are never all in memory.
pub struct WavWriter {
    file: BufWriter<tokio::fs::File>,
    path: std::path::PathBuf,
    spec: WavSpec,
    data_bytes: u64,
}

/// The header: RIFF, the 16-byte `fmt ` chunk and the `data` chunk's id and size.
fn header(spec: WavSpec, data_bytes: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36u32.saturating_add(data_bytes)).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&spec.channels.to_le_bytes());
    h.extend_from_slice(&spec.sample_rate.to_le_bytes());
    h.extend_from_slice(&(spec.sample_rate * spec.frame_bytes() as u32).to_le_bytes());
    h.extend_from_slice(&(spec.frame_bytes() as u16).to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_bytes.to_le_bytes());
    h
}

impl WavWriter {
    pub async fn create(path: &Path, spec: WavSpec) -> Result<WavWriter> {
        let io = |e| PipelineError::io(format!("writing {}", path.display()), e);
        let file = tokio::fs::File::create(path).await.map_err(io)?;
        let mut file = BufWriter::new(file);
        // The sizes are filled in by `finish`, once they are known.
        file.write_all(&header(spec, 0)).await.map_err(io)?;
        Ok(WavWriter {
            file,
            path: path.to_path_buf(),
            spec,
            data_bytes: 0,
        })
    }

    pub fn spec(&self) -> WavSpec {
        self.spec
    }

    /// Sample frames written so far.
    pub fn frames(&self) -> u64 {
        self.data_bytes / self.spec.frame_bytes() as u64
    }

    /// Appends interleaved samples in the file's byte order.
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .write_all(data)
            .await
            .map_err(|e| PipelineError::io(format!("writing {}", self.path.display()), e))?;
        self.data_bytes += data.len() as u64;
        Ok(())
    }

    /// Appends `frames` frames of silence.
    pub async fn silence(&mut self, frames: u64) -> Result<()> {
        const CHUNK: usize = 64 * 1024;
        let zeros = vec![0u8; CHUNK];
        let mut left = frames * self.spec.frame_bytes() as u64;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            self.write(&zeros[..n]).await?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Writes the real sizes into the header and closes the file.
    pub async fn finish(mut self) -> Result<()> {
        use tokio::io::AsyncSeekExt;
        let io = |e| PipelineError::io(format!("writing {}", self.path.display()), e);
        let size = u32::try_from(self.data_bytes).map_err(|_| {
            PipelineError::InvalidInput(format!(
                "{} would exceed the 4 GiB a WAV file can hold",
                self.path.display()
            ))
        })?;
        self.file.flush().await.map_err(io)?;
        let file = self.file.get_mut();
        file.seek(std::io::SeekFrom::Start(0)).await.map_err(io)?;
        file.write_all(&header(self.spec, size)).await.map_err(io)?;
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn written_files_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let spec = WavSpec {
            sample_rate: 24_000,
            channels: 1,
        };
        let mut w = WavWriter::create(&path, spec).await.unwrap();
        w.write(&[1, 0, 2, 0]).await.unwrap();
        w.silence(spec.frames_in(10)).await.unwrap();
        assert_eq!(w.frames(), 242);
        w.finish().await.unwrap();
        let wav = Wav::read(&path).await.unwrap();
        assert_eq!(wav.spec, spec);
        assert_eq!(wav.frames(), 242);
        assert_eq!(&wav.data[..4], &[1, 0, 2, 0]);
        assert_eq!(wav.duration_ms(), 10);
    }

    #[test]
    fn other_files_are_refused() {
        assert!(Wav::parse(b"hello").is_err());
        let mut float = header(
            WavSpec {
                sample_rate: 8000,
                channels: 1,
            },
            0,
        );
        float[20] = 3; // IEEE float
        assert!(Wav::parse(&float).unwrap_err().contains("not 16-bit PCM"));
    }
}
