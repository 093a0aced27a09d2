//! Loading the configuration: `config.toml`, overridden by environment variables,
//! overridden by command-line flags.
//!
//! Every setting has a default (see `config.toml` at the repository root, which documents
//! each one). Layers are merged as TOML tables before anything is typed, so a bad value is
//! reported with the setting's name and where the value came from, whichever layer it was
//! in. The environment variable of `section.key` is `OCTAVIA_SECTION_KEY`; `DATABASE_URL`
//! also sets `database.url`.

use super::Config;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

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

/// Why the configuration cannot be used: each names the file or the setting at fault.
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

pub(super) fn defaults_table() -> Table {
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

/// Loaders over a given environment, for the sections' tests.
#[cfg(test)]
pub(super) mod testing {
    use super::Loader;

    pub fn loader(env: &[(&str, &str)]) -> Loader {
        Loader::default().env(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    pub fn err(l: Loader) -> String {
        l.load().unwrap_err().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{err, loader, write};
    use super::*;

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
