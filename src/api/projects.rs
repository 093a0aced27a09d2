//! Projects: a user's folders for media and jobs.

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody, check_text};
use super::state::ApiState;
use crate::db::Session;
use crate::{db, sql};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

/// Most projects listed.
const LIST_LIMIT: i64 = 1000;

/// A project to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Up to 2,000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
}

/// A project.
#[derive(Debug, Serialize, ToSchema)]
pub struct Project {
    pub id: Uuid,
    pub name: Option<String>,
    pub description: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
}

/// The caller's projects, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectList {
    pub projects: Vec<Project>,
}

fn project(row: &Row) -> Project {
    Project {
        id: row.get("id"),
        name: row.get("name"),
        description: row.get("description"),
        created_at: row.get("created_at"),
    }
}

/// Checks that `project` (if any) is the caller's: someone else's is "not found", like
/// one that does not exist.
pub async fn check_owner<C: Session>(
    client: &C,
    caller: &Caller,
    project: Option<Uuid>,
) -> Result<(), ApiError> {
    let Some(project) = project else {
        return Ok(());
    };
    let owner: Option<Uuid> = db::query_opt(client, sql::PROJECT_OWNER, &[&project])
        .await?
        .and_then(|r| r.get("user_id"));
    if owner != Some(caller.user_id) {
        return Err(ApiError::NotFound("project"));
    }
    Ok(())
}

/// Create a project.
#[utoipa::path(
    post,
    operation_id = "createProject",
    path = "/api/projects",
    tag = "projects",
    request_body = NewProject,
    responses(
        (status = 201, description = "Created", body = Project),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody),
        (status = 422, description = "Invalid name or description", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewProject>,
) -> Result<(StatusCode, axum::Json<Project>), ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::Invalid(
            "name must have 1 to 200 characters".into(),
        ));
    }
    if body
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 2000)
    {
        return Err(ApiError::Invalid(
            "description must have at most 2000 characters".into(),
        ));
    }
    check_text("name", name)?;
    check_text(
        "description",
        body.description.as_deref().unwrap_or_default(),
    )?;
    let client = state.pool.get().await?;
    let row = db::query_opt(
        &client,
        sql::INSERT_PROJECT,
        &[&Uuid::now_v7(), &caller.user_id, &name, &body.description],
    )
    .await?
    .ok_or_else(|| ApiError::Internal("INSERT … RETURNING returned no row".into()))?;
    Ok((StatusCode::CREATED, axum::Json(project(&row))))
}

/// List the caller's projects, newest first.
#[utoipa::path(
    get,
    operation_id = "listProjects",
    path = "/api/projects",
    tag = "projects",
    responses(
        (status = 200, description = "The caller's projects", body = ProjectList),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<ProjectList>, ApiError> {
    let client = state.pool.get().await?;
    let rows = db::query(
        &client,
        sql::PROJECTS_OF_USER,
        &[&caller.user_id, &LIST_LIMIT],
    )
    .await?;
    Ok(axum::Json(ProjectList {
        projects: rows.iter().map(project).collect(),
    }))
}

/// Delete a project, every media file in it (uploads and outputs) and their stored files.
/// Its jobs stay, without a project. Refused while one of its jobs is in progress.
#[utoipa::path(
    delete,
    operation_id = "deleteProject",
    path = "/api/projects/{id}",
    tag = "projects",
    params(("id" = Uuid, Path, description = "The project id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such project of the caller's", body = ErrorBody),
        (status = 409, description = "A job of the project is in progress", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let mut client = state.pool.get().await?;
    check_owner(&client, &caller, Some(id)).await?;
    crate::retention::delete::project(&mut client, &state.storage, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
