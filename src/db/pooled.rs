//! Statements behind a transaction pooler (`database.pooler = "transaction"`), where each
//! transaction may run on another server connection:
//!
//! - named prepared statements would be parsed on one server and bound on another (and
//!   collide with the same names from other processes), so statements are sent unnamed,
//!   parsed, bound and run in one round trip, with the parameter types the server infers,
//!   learnt once per statement and process ([`param_types`]);
//! - settings made at connection start or with `SET` would stay on whichever server
//!   connection ran them, so a pool's session settings are made with `SET LOCAL` in each
//!   transaction, sent in the same round trip as the statement.
//!
//! A pool's connections are told apart by their statement cache, which is one per
//! connection and lives as long as it: [`register`] notes it when the connection is made.

use super::Session;
use deadpool_postgres::StatementCache;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock, Weak};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Row, SimpleQueryMessage};

/// How a connection behind a transaction pooler runs statements.
#[derive(Debug)]
pub(super) struct Mode {
    /// `SET LOCAL …;` statements for the pool's session settings, if it has any.
    settings: Option<String>,
}

impl Mode {
    /// The mode of a pool whose sessions would start with `options` (`-c name=value …`).
    pub fn new(options: Option<&str>) -> Mode {
        let settings: String = options
            .unwrap_or_default()
            .split_whitespace()
            .filter(|w| *w != "-c")
            .filter_map(|w| w.split_once('='))
            .map(|(name, value)| format!("SET LOCAL {name} = '{}';", value.replace('\'', "''")))
            .collect();
        Mode {
            settings: (!settings.is_empty()).then_some(settings),
        }
    }
}

/// Connections behind a transaction pooler, by the address of their statement cache. The
/// weak reference keeps the address from being reused while the entry exists.
type Registry = HashMap<usize, (Weak<StatementCache>, Arc<Mode>)>;

static CONNECTIONS: LazyLock<RwLock<Registry>> = LazyLock::new(Default::default);

/// Notes a new connection (by its statement cache) as running statements in `mode`, and
/// forgets closed ones.
pub(super) fn register(cache: &Arc<StatementCache>, mode: &Arc<Mode>) {
    let mut connections = CONNECTIONS.write().unwrap_or_else(|e| e.into_inner());
    connections.retain(|_, (cache, _)| cache.strong_count() > 0);
    connections.insert(
        Arc::as_ptr(cache) as usize,
        (Arc::downgrade(cache), mode.clone()),
    );
}

/// The mode of the connection `client` runs on, if it is behind a transaction pooler.
pub(super) fn mode_of<C: Session>(client: &C) -> Option<Arc<Mode>> {
    let connections = CONNECTIONS.read().unwrap_or_else(|e| e.into_inner());
    if connections.is_empty() {
        return None;
    }
    let (_, mode) = connections.get(&(Arc::as_ptr(client.statement_cache()) as usize))?;
    Some(mode.clone())
}

/// Runs `sql` unnamed, inside the pool's settings.
pub(super) async fn query<C: Session>(
    client: &C,
    mode: &Mode,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> crate::Result<(Vec<Row>, u64)> {
    let types = param_types(client, sql).await?;
    if types.len() != params.len() {
        return Err(crate::Error::Invalid(format!(
            "a statement takes {} parameters, {} given: {sql}",
            types.len(),
            params.len()
        )));
    }
    let typed: Vec<(&(dyn ToSql + Sync), Type)> =
        params.iter().copied().zip(types.iter().cloned()).collect();
    // Every message is written when the futures are first polled, together, so nothing
    // can be left half-sent: the settings, the statement and the transaction's end reach
    // the pooler as one unit, and a statement that fails makes COMMIT a rollback.
    let run = client.run_typed(sql, &typed);
    let (rows, settings, end) = match (&mode.settings, client.in_transaction()) {
        (None, _) => (run.await, Ok(()), Ok(())),
        (Some(set), true) => {
            let (set, rows) = tokio::join!(client.batch_execute(set), run);
            (rows, set, Ok(()))
        }
        (Some(set), false) => {
            let begin = format!("BEGIN; {set}");
            let (begin, rows, end) = tokio::join!(
                client.batch_execute(&begin),
                run,
                client.batch_execute("COMMIT")
            );
            (rows, begin, end)
        }
    };
    let rows = rows?;
    settings?;
    end?;
    Ok(rows)
}

/// Parameter types of the statements run so far, by statement.
static PARAM_TYPES: LazyLock<RwLock<HashMap<String, Arc<[Type]>>>> =
    LazyLock::new(Default::default);

/// The types PostgreSQL infers for the parameters of `sql`, asked once per statement: it
/// is prepared under a name, read back from `pg_prepared_statements` and deallocated, in
/// one message, which a pooler runs on one server connection as one transaction.
async fn param_types<C: Session>(client: &C, sql: &str) -> crate::Result<Arc<[Type]>> {
    if let Some(types) = PARAM_TYPES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(sql)
    {
        return Ok(types.clone());
    }
    let probe = format!(
        "PREPARE octavia_param_types AS {sql};\n\
         SELECT parameter_types::oid[]::text FROM pg_prepared_statements \
         WHERE name = 'octavia_param_types';\n\
         DEALLOCATE octavia_param_types"
    );
    let messages = client.simple(&probe).await?;
    let listed = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0),
            _ => None,
        })
        .ok_or_else(|| crate::Error::Invalid(format!("no parameter types for: {sql}")))?;
    let types = listed
        .trim_matches(|c| c == '{' || c == '}')
        .split(',')
        .filter(|oid| !oid.is_empty())
        .map(|oid| {
            oid.parse().ok().and_then(Type::from_oid).ok_or_else(|| {
                crate::Error::Invalid(format!(
                    "parameter type {oid} is not a built-in type, which an unnamed \
                         statement needs: {sql}"
                ))
            })
        })
        .collect::<crate::Result<Arc<[Type]>>>()?;
    PARAM_TYPES
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(sql.to_string(), types.clone());
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::Mode;

    #[test]
    fn session_options_become_settings_local_to_each_transaction() {
        let mode = Mode::new(Some(
            "-c enable_seqscan=off -c octavia.job_events=deferred -c synchronous_commit=off",
        ));
        assert_eq!(
            mode.settings.as_deref(),
            Some(
                "SET LOCAL enable_seqscan = 'off';SET LOCAL octavia.job_events = 'deferred';\
                 SET LOCAL synchronous_commit = 'off';"
            )
        );
        assert!(Mode::new(None).settings.is_none());
    }
}
