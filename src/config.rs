//! Configuration: `config.toml`, overridden by environment variables, overridden by
//! command-line flags.
//!
//! Every setting has a default (see `config.toml` at the repository root, which documents
//! each one). Layers are merged as TOML tables before anything is typed, so a bad value is
//! reported with the setting's name and where the value came from, whichever layer it was
//! in. The environment variable of `section.key` is `OCTAVIA_SECTION_KEY`; `DATABASE_URL`
//! also sets `database.url`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use toml::{Table, Value};

mod api;
mod pipeline;

pub use api::{ApiConfig, PolarConfig, PricingConfig};
pub use pipeline::PipelineConfig;

/// Where a configuration value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Flag(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => write!(f, "the default"),
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Env(v) => write!(f, "environment variable {v}"),
            Source::Flag(v) => write!(f, "flag {v}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("unknown setting `{setting}` in {origin}")]
    Unknown { setting: String, origin: Source },
    #[error("invalid value for setting `{setting}` (from {origin}): {message}")]
    Invalid {
        setting: String,
        origin: Source,
        message: String,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub worker: WorkerConfig,
    pub api: ApiConfig,
    pub engines: EnginesConfig,
    pub pipeline: PipelineConfig,
    pub pricing: PricingConfig,
    pub polar: PolarConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub pool_size: u32,
    pub connect_timeout_seconds: u64,
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/octavia".into(),
            pool_size: 16,
            connect_timeout_seconds: 5,
            migrate_on_start: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub backend: String,
    pub local_dir: String,
    pub s3_bucket: String,
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
    pub s3_path_style: bool,
    pub s3_allow_http: bool,
    pub s3_max_retries: u32,
    pub s3_retry_timeout_seconds: u64,
    pub url_expiry_seconds: u64,
    pub signing_secret: String,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: "local".into(),
            local_dir: "var/objects".into(),
            s3_bucket: "octavia".into(),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            s3_path_style: true,
            s3_allow_http: false,
            s3_max_retries: 3,
            s3_retry_timeout_seconds: 15,
            url_expiry_seconds: 900,
            signing_secret: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    pub concurrency: u32,
    pub threads: u32,
    pub job_types: Vec<String>,
    pub worker_id: String,
    pub claim_batch: u32,
    pub prefetch_ms: u64,
    pub lease_seconds: u64,
    pub heartbeat_seconds: u64,
    pub poll_interval_ms: u64,
    pub listen: bool,
    pub rescue_interval_seconds: u64,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub handler_timeout_seconds: u64,
    pub shutdown_grace_seconds: u64,
    pub async_commit: bool,
    pub segment_retention_seconds: u64,
    pub metrics_listen: String,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            threads: 1,
            job_types: Vec::new(),
            worker_id: String::new(),
            claim_batch: 300,
            prefetch_ms: 10,
            lease_seconds: 30,
            heartbeat_seconds: 5,
            poll_interval_ms: 1000,
            listen: true,
            rescue_interval_seconds: 5,
            max_attempts: 5,
            backoff_base_ms: 1000,
            backoff_max_ms: 300_000,
            handler_timeout_seconds: 1800,
            shutdown_grace_seconds: 30,
            async_commit: true,
            segment_retention_seconds: 604_800,
            metrics_listen: String::new(),
        }
    }
}

/// The pipeline's engines: which implementation of each, and how to reach HTTP ones.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EnginesConfig {
    /// `pocketsphinx` or `openai` (an OpenAI-compatible transcription server).
    pub speech_to_text: String,
    pub speech_to_text_url: String,
    pub speech_to_text_model: String,
    pub speech_to_text_api_key: String,
    /// `apertium` or `libretranslate`.
    pub translator: String,
    pub translator_url: String,
    pub translator_api_key: String,
    /// `espeak-ng` or `openai` (an OpenAI-compatible speech server).
    pub text_to_speech: String,
    pub text_to_speech_url: String,
    pub text_to_speech_model: String,
    pub text_to_speech_voice: String,
    pub text_to_speech_api_key: String,
    /// espeak-ng's speaking rate.
    pub espeak_words_per_minute: u32,
    /// Limit on one request to an HTTP engine, connection included.
    pub http_timeout_seconds: u64,
}

impl Default for EnginesConfig {
    fn default() -> Self {
        Self {
            speech_to_text: "pocketsphinx".into(),
            speech_to_text_url: String::new(),
            speech_to_text_model: "whisper-1".into(),
            speech_to_text_api_key: String::new(),
            translator: "apertium".into(),
            translator_url: String::new(),
            translator_api_key: String::new(),
            text_to_speech: "espeak-ng".into(),
            text_to_speech_url: String::new(),
            text_to_speech_model: "tts-1".into(),
            text_to_speech_voice: "alloy".into(),
            text_to_speech_api_key: String::new(),
            espeak_words_per_minute: 160,
            http_timeout_seconds: 120,
        }
    }
}

impl EnginesConfig {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        let http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        // Each engine: its setting, the choices, the one that is HTTP, and its URL setting.
        let engines = [
            (
                "engines.speech_to_text",
                &self.speech_to_text,
                ["pocketsphinx", "openai"],
                "engines.speech_to_text_url",
                &self.speech_to_text_url,
            ),
            (
                "engines.translator",
                &self.translator,
                ["apertium", "libretranslate"],
                "engines.translator_url",
                &self.translator_url,
            ),
            (
                "engines.text_to_speech",
                &self.text_to_speech,
                ["espeak-ng", "openai"],
                "engines.text_to_speech_url",
                &self.text_to_speech_url,
            ),
        ];
        for (setting, value, choices, url_setting, url) in engines {
            if !choices.contains(&value.as_str()) {
                return Err((
                    setting,
                    format!("`{value}` is not one of {}", choices.join(", ")),
                ));
            }
            if value == choices[1] && !http(url) {
                return Err((
                    url_setting,
                    format!("`{url}` is not an http(s) URL, and {setting} = \"{value}\" needs one"),
                ));
            }
        }
        if !(80..=450).contains(&self.espeak_words_per_minute) {
            return Err((
                "engines.espeak_words_per_minute",
                "must be between 80 and 450".into(),
            ));
        }
        if self.http_timeout_seconds == 0 {
            return Err((
                "engines.http_timeout_seconds",
                "must be greater than 0".into(),
            ));
        }
        Ok(())
    }
}

/// Where to look for the configuration and what overrides it.
#[derive(Debug, Default, Clone)]
pub struct Loader {
    /// An explicit file: it must exist. Without one, `OCTAVIA_CONFIG` names the file, and
    /// without that `config.toml` in the working directory is read if it is there.
    pub file: Option<PathBuf>,
    /// Command-line overrides as (`section.key`, value, flag name), applied last.
    pub flags: Vec<(String, String, String)>,
    /// Environment variables are read from here (tests pass their own).
    pub env: Option<Vec<(String, String)>>,
}

impl Loader {
    pub fn file(mut self, file: Option<PathBuf>) -> Self {
        self.file = file;
        self
    }

    /// Override `setting` (`section.key`) with `value`, as given by command-line `flag`.
    pub fn flag(mut self, setting: &str, value: impl ToString, flag: &str) -> Self {
        self.flags
            .push((setting.to_string(), value.to_string(), flag.to_string()));
        self
    }

    pub fn env(mut self, env: Vec<(String, String)>) -> Self {
        self.env = Some(env);
        self
    }

    pub fn load(&self) -> Result<Config, ConfigError> {
        let defaults = defaults_table();
        let mut merged = defaults.clone();
        // Where each setting's current value came from.
        let mut sources: Vec<(String, Source)> = Vec::new();

        let env: Vec<(String, String)> = match &self.env {
            Some(e) => e.clone(),
            None => std::env::vars().collect(),
        };
        let env_get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());

        let file = match &self.file {
            Some(p) => Some((p.clone(), true)),
            None => match env_get("OCTAVIA_CONFIG") {
                Some(p) if !p.is_empty() => Some((PathBuf::from(p), true)),
                _ => Some((PathBuf::from("config.toml"), false)),
            },
        };
        if let Some((path, required)) = file {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let table: Table =
                        text.parse()
                            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                                path: path.clone(),
                                message: e.message().to_string(),
                            })?;
                    merge_file(&defaults, &mut merged, &table, &path, &mut sources)?;
                }
                Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(ConfigError::Read { path, source }),
            }
        }

        for (section, keys) in &defaults {
            let Some(keys) = keys.as_table() else {
                continue;
            };
            for (key, default) in keys {
                let setting = format!("{section}.{key}");
                let mut names = vec![format!(
                    "OCTAVIA_{}_{}",
                    section.to_uppercase(),
                    key.to_uppercase()
                )];
                if setting == "database.url" {
                    // The conventional name wins over OCTAVIA_DATABASE_URL.
                    names.push("DATABASE_URL".into());
                }
                for name in names {
                    if let Some(raw) = env_get(&name) {
                        let source = Source::Env(name);
                        let value =
                            parse_as(default, &raw).map_err(|message| ConfigError::Invalid {
                                setting: setting.clone(),
                                origin: source.clone(),
                                message,
                            })?;
                        set(&mut merged, section, key, value);
                        sources.push((setting.clone(), source));
                    }
                }
            }
        }

        for (setting, raw, flag) in &self.flags {
            let source = Source::Flag(flag.clone());
            let (section, key) = setting.split_once('.').unwrap_or((setting, ""));
            let default = defaults
                .get(section)
                .and_then(|s| s.get(key))
                .ok_or_else(|| ConfigError::Unknown {
                    setting: setting.clone(),
                    origin: source.clone(),
                })?;
            let value = parse_as(default, raw).map_err(|message| ConfigError::Invalid {
                setting: setting.clone(),
                origin: source.clone(),
                message,
            })?;
            set(&mut merged, section, key, value);
            sources.push((setting.clone(), source));
        }

        let source_of = |setting: &str| {
            sources
                .iter()
                .rev()
                .find(|(s, _)| s == setting)
                .map(|(_, src)| src.clone())
                .unwrap_or(Source::Default)
        };

        let config: Config = serde_path_to_error::deserialize(Value::Table(merged)).map_err(
            |e: serde_path_to_error::Error<toml::de::Error>| {
                let setting = e.path().to_string();
                ConfigError::Invalid {
                    origin: source_of(&setting),
                    message: e.inner().message().to_string(),
                    setting,
                }
            },
        )?;
        config
            .validate()
            .map_err(|(setting, message)| ConfigError::Invalid {
                origin: source_of(setting),
                setting: setting.to_string(),
                message,
            })?;
        Ok(config)
    }
}

fn defaults_table() -> Table {
    match Value::try_from(Config::default()) {
        Ok(Value::Table(t)) => t,
        _ => unreachable!("the default configuration serialises to a table"),
    }
}

fn set(merged: &mut Table, section: &str, key: &str, value: Value) {
    if let Some(Value::Table(t)) = merged.get_mut(section) {
        t.insert(key.to_string(), value);
    }
}

fn merge_file(
    defaults: &Table,
    merged: &mut Table,
    file: &Table,
    path: &Path,
    sources: &mut Vec<(String, Source)>,
) -> Result<(), ConfigError> {
    for (section, keys) in file {
        let unknown = |setting: String| ConfigError::Unknown {
            setting,
            origin: Source::File(path.to_path_buf()),
        };
        let Some(known) = defaults.get(section).and_then(Value::as_table) else {
            return Err(unknown(section.clone()));
        };
        let Some(keys) = keys.as_table() else {
            return Err(ConfigError::Invalid {
                setting: section.clone(),
                origin: Source::File(path.to_path_buf()),
                message: "expected a table of settings".into(),
            });
        };
        for (key, value) in keys {
            if !known.contains_key(key) {
                return Err(unknown(format!("{section}.{key}")));
            }
            set(merged, section, key, value.clone());
            sources.push((format!("{section}.{key}"), Source::File(path.to_path_buf())));
        }
    }
    Ok(())
}

/// Parses a string from the environment or a flag as the type of the setting's default.
fn parse_as(default: &Value, raw: &str) -> Result<Value, String> {
    let raw = raw.trim();
    match default {
        Value::String(_) => Ok(Value::String(raw.to_string())),
        Value::Integer(_) => raw
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| format!("`{raw}` is not an integer")),
        Value::Float(_) => raw
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| format!("`{raw}` is not a number")),
        Value::Boolean(_) => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Boolean(false)),
            _ => Err(format!("`{raw}` is not a boolean (true or false)")),
        },
        Value::Array(_) => Ok(Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        )),
        other => Err(format!("cannot set a {} from text", other.type_str())),
    }
}

impl Config {
    /// Semantic checks serde cannot express. Returns the offending setting and why.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        fn positive(name: &'static str, v: u64) -> Result<(), (&'static str, String)> {
            if v == 0 {
                return Err((name, "must be greater than 0".into()));
            }
            Ok(())
        }
        let d = &self.database;
        if d.url.parse::<tokio_postgres::Config>().is_err() {
            return Err((
                "database.url",
                format!("`{}` is not a PostgreSQL connection URL", d.url),
            ));
        }
        positive("database.pool_size", d.pool_size.into())?;
        positive(
            "database.connect_timeout_seconds",
            d.connect_timeout_seconds,
        )?;

        let s = &self.storage;
        match s.backend.as_str() {
            "local" => {
                if s.local_dir.is_empty() {
                    return Err(("storage.local_dir", "must not be empty".into()));
                }
            }
            "s3" => {
                if s.s3_bucket.is_empty() {
                    return Err(("storage.s3_bucket", "must not be empty".into()));
                }
                let http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
                if !s.s3_endpoint.is_empty() && !http(&s.s3_endpoint) {
                    return Err((
                        "storage.s3_endpoint",
                        format!("`{}` is not an http(s) URL", s.s3_endpoint),
                    ));
                }
            }
            other => {
                return Err((
                    "storage.backend",
                    format!("`{other}` is not a storage backend (local or s3)"),
                ));
            }
        }
        positive(
            "storage.s3_retry_timeout_seconds",
            s.s3_retry_timeout_seconds,
        )?;
        positive("storage.url_expiry_seconds", s.url_expiry_seconds)?;
        // S3 refuses presigned URLs that claim to live longer than a week.
        if s.url_expiry_seconds > 604_800 {
            return Err((
                "storage.url_expiry_seconds",
                "must be at most 604800 (7 days, the longest S3 accepts)".into(),
            ));
        }
        // Empty is allowed: a worker never signs URLs, and Storage::signed_url says what
        // is missing when an API process tries. A short secret is refused because anyone
        // who guesses it can read and write every object.
        if !s.signing_secret.is_empty() && s.signing_secret.len() < 32 {
            return Err((
                "storage.signing_secret",
                "must be empty or at least 32 characters long".into(),
            ));
        }

        let w = &self.worker;
        positive("worker.concurrency", w.concurrency.into())?;
        positive("worker.claim_batch", w.claim_batch.into())?;
        positive("worker.lease_seconds", w.lease_seconds)?;
        positive("worker.heartbeat_seconds", w.heartbeat_seconds)?;
        if w.heartbeat_seconds * 2 > w.lease_seconds {
            return Err((
                "worker.heartbeat_seconds",
                format!(
                    "must be at most half of worker.lease_seconds ({}) so a lease is renewed before it expires",
                    w.lease_seconds
                ),
            ));
        }
        positive("worker.threads", w.threads.into())?;
        if w.threads > 64 {
            return Err((
                "worker.threads",
                "must be at most 64: the worker's own work is waiting on the database, storage and engine processes".into(),
            ));
        }
        if w.prefetch_ms > 1000 {
            return Err((
                "worker.prefetch_ms",
                "must be at most 1000: prefetched segments wait leased where no other worker can take them".into(),
            ));
        }
        positive("worker.poll_interval_ms", w.poll_interval_ms)?;
        positive("worker.rescue_interval_seconds", w.rescue_interval_seconds)?;
        positive("worker.max_attempts", w.max_attempts.into())?;
        if w.backoff_max_ms < w.backoff_base_ms {
            return Err((
                "worker.backoff_max_ms",
                "must be at least worker.backoff_base_ms".into(),
            ));
        }
        positive("worker.handler_timeout_seconds", w.handler_timeout_seconds)?;
        if !w.metrics_listen.is_empty() && w.metrics_listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err((
                "worker.metrics_listen",
                format!(
                    "`{}` is not an address to listen on (such as 127.0.0.1:9464); empty serves no metrics",
                    w.metrics_listen
                ),
            ));
        }

        self.api.validate()?;
        self.engines.validate()?;
        self.pipeline.validate()?;
        self.pricing.validate()?;
        self.polar.validate()?;
        Ok(())
    }

    /// The worker id used in `locked_by`: configured, or `hostname-pid`.
    pub fn worker_id(&self) -> String {
        if !self.worker.worker_id.is_empty() {
            return self.worker.worker_id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "worker".into());
        format!("{host}-{}", std::process::id())
    }
}

/// Flags every binary takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CommonArgs {
    /// Configuration file [default: $OCTAVIA_CONFIG, else ./config.toml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// PostgreSQL URL; overrides database.url and DATABASE_URL
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Do not apply pending migrations at start-up
    #[arg(long, global = true)]
    pub no_migrate: bool,
    /// Override any setting, e.g. --set worker.lease_seconds=60 (repeatable)
    #[arg(long = "set", global = true, value_name = "SECTION.KEY=VALUE")]
    pub set: Vec<String>,
}

impl CommonArgs {
    /// A loader with these flags applied; binaries add their own flags to it.
    pub fn loader(&self) -> Result<Loader, ConfigError> {
        let mut loader = Loader::default().file(self.config.clone());
        for item in &self.set {
            let (setting, value) = item.split_once('=').ok_or_else(|| ConfigError::Invalid {
                setting: item.clone(),
                origin: Source::Flag("--set".into()),
                message: "expected SECTION.KEY=VALUE".into(),
            })?;
            loader = loader.flag(setting.trim(), value, "--set");
        }
        if let Some(url) = &self.database_url {
            loader = loader.flag("database.url", url, "--database-url");
        }
        if self.no_migrate {
            loader = loader.flag("database.migrate_on_start", false, "--no-migrate");
        }
        Ok(loader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loader(env: &[(&str, &str)]) -> Loader {
        Loader::default().env(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_are_valid() {
        let c = loader(&[])
            .file(Some("/nonexistent/config.toml".into()))
            .load();
        assert!(matches!(c, Err(ConfigError::Read { .. })), "{c:?}");
        let c = Loader {
            file: None,
            flags: vec![],
            env: Some(vec![("OCTAVIA_CONFIG".into(), String::new())]),
        };
        // Without a file in the working directory the defaults apply.
        let dir = tempfile::tempdir().unwrap();
        let _ = dir;
        assert!(c.load().is_ok());
    }

    #[test]
    fn file_then_env_then_flag() {
        let f = write(
            "[worker]\nconcurrency = 4\nlease_seconds = 60\n[api]\nlisten = \"0.0.0.0:9000\"\n",
        );
        let base = loader(&[("OCTAVIA_WORKER_CONCURRENCY", "8")]).file(Some(f.path().into()));
        let c = base.load().unwrap();
        assert_eq!(c.worker.concurrency, 8, "env beats file");
        assert_eq!(c.worker.lease_seconds, 60, "file beats default");
        assert_eq!(c.api.listen, "0.0.0.0:9000");
        assert_eq!(c.worker.poll_interval_ms, 1000, "default stays");
        let c = base
            .clone()
            .flag("worker.concurrency", 32, "--concurrency")
            .load()
            .unwrap();
        assert_eq!(c.worker.concurrency, 32, "flag beats env");
    }

    #[test]
    fn database_url_env() {
        let c = loader(&[("DATABASE_URL", "postgres://u@h:1/db")])
            .file(Some(write("").path().into()))
            .load()
            .unwrap();
        assert_eq!(c.database.url, "postgres://u@h:1/db");
    }

    #[test]
    fn lists_and_booleans_from_env() {
        let c = loader(&[
            ("OCTAVIA_WORKER_JOB_TYPES", "noop, subtitles"),
            ("OCTAVIA_WORKER_LISTEN", "false"),
        ])
        .file(Some(write("").path().into()))
        .load()
        .unwrap();
        assert_eq!(c.worker.job_types, vec!["noop", "subtitles"]);
        assert!(!c.worker.listen);
    }

    fn err(l: Loader) -> String {
        l.load().unwrap_err().to_string()
    }

    #[test]
    fn bad_values_name_the_setting_and_source() {
        let empty = write("");
        let e =
            err(loader(&[("OCTAVIA_WORKER_CONCURRENCY", "many")]).file(Some(empty.path().into())));
        assert!(e.contains("worker.concurrency"), "{e}");
        assert!(e.contains("OCTAVIA_WORKER_CONCURRENCY"), "{e}");

        let f = write("[worker]\nconcurrency = \"lots\"\n");
        let e = err(loader(&[]).file(Some(f.path().into())));
        assert!(e.contains("worker.concurrency"), "{e}");
        assert!(e.contains(&f.path().display().to_string()), "{e}");

        let f = write("[worker]\nconcurrency = -3\n");
        let e = err(loader(&[]).file(Some(f.path().into())));
        assert!(e.contains("worker.concurrency"), "{e}");

        let e = err(loader(&[]).file(Some(empty.path().into())).flag(
            "worker.concurrency",
            0,
            "--concurrency",
        ));
        assert!(
            e.contains("worker.concurrency") && e.contains("--concurrency"),
            "{e}"
        );

        let e = err(loader(&[("OCTAVIA_STORAGE_BACKEND", "ftp")]).file(Some(empty.path().into())));
        assert!(e.contains("storage.backend") && e.contains("ftp"), "{e}");

        let e = err(loader(&[("DATABASE_URL", "mysql:/nope")]).file(Some(empty.path().into())));
        assert!(e.contains("database.url"), "{e}");

        let e =
            err(loader(&[("OCTAVIA_WORKER_HEARTBEAT_SECONDS", "20")])
                .file(Some(empty.path().into())));
        assert!(e.contains("worker.heartbeat_seconds"), "{e}");

        let e = err(loader(&[("OCTAVIA_API_LISTEN", "localhost")]).file(Some(empty.path().into())));
        assert!(e.contains("api.listen"), "{e}");

        for threads in ["0", "65"] {
            let e =
                err(loader(&[("OCTAVIA_WORKER_THREADS", threads)]).file(Some(empty.path().into())));
            assert!(e.contains("worker.threads"), "{threads}: {e}");
        }
        let c = loader(&[("OCTAVIA_WORKER_THREADS", "4")])
            .file(Some(empty.path().into()))
            .load()
            .unwrap();
        assert_eq!(c.worker.threads, 4);

        let e = err(loader(&[("OCTAVIA_STORAGE_SIGNING_SECRET", "too-short")])
            .file(Some(empty.path().into())));
        assert!(e.contains("storage.signing_secret"), "{e}");

        let e = err(loader(&[("OCTAVIA_STORAGE_URL_EXPIRY_SECONDS", "604801")])
            .file(Some(empty.path().into())));
        assert!(e.contains("storage.url_expiry_seconds"), "{e}");
    }

    #[test]
    fn engine_choices_and_their_urls_are_checked() {
        let empty = write("");
        let e = err(
            loader(&[("OCTAVIA_ENGINES_TRANSLATOR", "google")]).file(Some(empty.path().into()))
        );
        assert!(
            e.contains("engines.translator") && e.contains("google"),
            "{e}"
        );
        let e =
            err(loader(&[("OCTAVIA_ENGINES_SPEECH_TO_TEXT", "openai")])
                .file(Some(empty.path().into())));
        assert!(e.contains("engines.speech_to_text_url"), "{e}");
        let c = loader(&[
            ("OCTAVIA_ENGINES_TEXT_TO_SPEECH", "openai"),
            ("OCTAVIA_ENGINES_TEXT_TO_SPEECH_URL", "http://tts:8000"),
        ])
        .file(Some(empty.path().into()))
        .load()
        .unwrap();
        assert_eq!(c.engines.text_to_speech, "openai");
        let e = err(loader(&[("OCTAVIA_ENGINES_ESPEAK_WORDS_PER_MINUTE", "20")])
            .file(Some(empty.path().into())));
        assert!(e.contains("engines.espeak_words_per_minute"), "{e}");
    }

    #[test]
    fn pipeline_settings_are_checked() {
        let empty = write("");
        let c = loader(&[
            ("OCTAVIA_PIPELINE_SEGMENT_SECONDS", "5"),
            ("OCTAVIA_PIPELINE_MAX_TEMPO", "1.5"),
        ])
        .file(Some(empty.path().into()))
        .load()
        .unwrap();
        assert_eq!(c.pipeline.segment_seconds, 5);
        assert_eq!(c.pipeline.max_tempo, 1.5);
        for (var, value, setting) in [
            (
                "OCTAVIA_PIPELINE_SEGMENT_SECONDS",
                "0",
                "pipeline.segment_seconds",
            ),
            ("OCTAVIA_PIPELINE_MAX_TEMPO", "0.9", "pipeline.max_tempo"),
            ("OCTAVIA_PIPELINE_MIN_TEMPO", "9", "pipeline.min_tempo"),
            (
                "OCTAVIA_PIPELINE_SILENCE_NOISE_DB",
                "3",
                "pipeline.silence_noise_db",
            ),
            (
                "OCTAVIA_PIPELINE_SUBTITLE_BATCH_CUES",
                "0",
                "pipeline.subtitle_batch_cues",
            ),
        ] {
            let e = err(loader(&[(var, value)]).file(Some(empty.path().into())));
            assert!(e.contains(setting) && e.contains(var), "{e}");
        }
    }

    #[test]
    fn unknown_settings_and_bad_syntax_are_refused() {
        let f = write("[worker]\nconcurency = 3\n");
        let e = err(loader(&[]).file(Some(f.path().into())));
        assert!(e.contains("worker.concurency"), "{e}");
        let f = write("[wrker]\n");
        let e = err(loader(&[]).file(Some(f.path().into())));
        assert!(e.contains("wrker"), "{e}");
        let f = write("[worker\n");
        let e = err(loader(&[]).file(Some(f.path().into())));
        assert!(e.contains("not valid TOML"), "{e}");
    }

    /// config.toml at the root documents every setting with its default value.
    #[test]
    fn shipped_config_toml_documents_every_setting_with_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let shipped: Table = text.parse().unwrap();
        assert_eq!(
            Value::Table(shipped),
            Value::Table(defaults_table()),
            "config.toml and Config::default() disagree"
        );
    }
}
