//! Deleting what a user owns: a media file, a project, the user. Rows go as the data
//! model allows (a row that a job or another file names stays, marked deleted, so the
//! jobs and the ledger keep their history); every object goes. The rows change in one
//! transaction, then the objects are deleted; what a crash leaves in the store, no row
//! names any more, and the orphan pass deletes it.

use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::{db, sql};
use deadpool_postgres::Object;
use deadpool_postgres::Transaction;
use uuid::Uuid;

/// What a deletion removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Media files deleted (rows removed, or kept marked deleted).
    pub media: u64,
    /// Of those, rows kept because a job or another file names them.
    pub media_kept: u64,
    /// Objects deleted from the store.
    pub objects: u64,
}

/// What is being deleted, for the refusal while a job in progress needs it.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Media(Uuid),
    Project(Uuid),
    User(Uuid),
}

/// Refuses ([`Error::Conflict`]) while a job in progress reads one of `media` as its
/// input or belongs to the project or user being deleted: deleting under it would fail it.
async fn refuse_in_use(tx: &Transaction<'_>, media: &[Uuid], target: Target) -> Result<()> {
    let (project, user) = match target {
        Target::Media(_) => (None, None),
        Target::Project(p) => (Some(p), None),
        Target::User(u) => (None, Some(u)),
    };
    let busy = db::query(tx, sql::MEDIA_IN_USE, &[&media, &project, &user]).await?;
    if busy.is_empty() {
        return Ok(());
    }
    let jobs: Vec<String> = busy
        .iter()
        .map(|r| {
            format!(
                "{} ({})",
                r.get::<_, Uuid>("id"),
                r.get::<_, String>("status")
            )
        })
        .collect();
    let what = match target {
        Target::Media(_) => "this media file is the input of",
        Target::Project(_) => "this project has",
        Target::User(_) => "this user has",
    };
    Err(Error::Conflict(format!(
        "{what} jobs still in progress: {}; cancel them or wait until they end",
        jobs.join(", ")
    )))
}

/// Deletes `target`: a media file (whose owner the caller checked), or a project or a
/// user with every media file of theirs, unless a job in progress needs one.
async fn delete(client: &mut Object, storage: &Storage, target: Target) -> Result<Deleted> {
    let tx = client.transaction().await?;
    let (ids, then) = match target {
        Target::Media(id) => (vec![id], None),
        Target::Project(id) => {
            let none: Option<Uuid> = None;
            let rows = db::query(&tx, sql::MEDIA_OF_OWNER, &[&Some(id), &none]).await?;
            (
                rows.iter().map(|r| r.get("id")).collect(),
                Some((sql::DELETE_PROJECT, id)),
            )
        }
        Target::User(id) => {
            let none: Option<Uuid> = None;
            let rows = db::query(&tx, sql::MEDIA_OF_OWNER, &[&none, &Some(id)]).await?;
            (
                rows.iter().map(|r| r.get("id")).collect(),
                Some((sql::DELETE_USER, id)),
            )
        }
    };
    refuse_in_use(&tx, &ids, target).await?;
    let detach_owner = matches!(target, Target::User(_));
    let rows = db::query(&tx, sql::DELETE_MEDIA, &[&ids, &detach_owner]).await?;
    if let Some((statement, id)) = then {
        db::execute(&tx, statement, &[&id]).await?;
    }
    tx.commit().await?;
    let mut deleted = Deleted::default();
    let mut keys = Vec::new();
    for r in &rows {
        keys.extend(super::stored_keys(r));
        deleted.media += 1;
        deleted.media_kept += u64::from(r.get::<_, bool>("named"));
    }
    deleted.objects = keys.len() as u64;
    storage.delete_many(&keys).await?;
    Ok(deleted)
}

/// Deletes media file `id`.
pub async fn media(client: &mut Object, storage: &Storage, id: Uuid) -> Result<Deleted> {
    delete(client, storage, Target::Media(id)).await
}

/// Deletes project `id` and every media file in it; its jobs stay, without a project.
pub async fn project(client: &mut Object, storage: &Storage, id: Uuid) -> Result<Deleted> {
    delete(client, storage, Target::Project(id)).await
}

/// Deletes user `id`, their projects, sessions and media files. Their jobs stay without an
/// owner, with the payments (`transactions`); their credit entries go with them, as the
/// data model's `ON DELETE CASCADE` says.
pub async fn user(client: &mut Object, storage: &Storage, id: Uuid) -> Result<Deleted> {
    delete(client, storage, Target::User(id)).await
}
