//! The OpenAPI document. Its paths come from the handlers' `#[utoipa::path]` annotations
//! as [`super::router`] registers them, so it lists exactly the routes that are served;
//! this module adds what is global: title, the bearer security scheme, tags.

use axum::Extension;
use axum::response::IntoResponse;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Octavia API",
        description = "Upload media, create translation jobs paid in credits, follow their progress, download the results."
    ),
    modifiers(&BearerScheme),
    // The data of each event of GET /api/jobs/{id}/events, which the stream's schema
    // (JobEventMessage) carries as a JSON string.
    components(schemas(super::events::JobEvent)),
    tags(
        (name = "sessions", description = "Sign in and out"),
        (name = "keys", description = "API keys for servers that call the API"),
        (name = "projects", description = "Folders for media and jobs"),
        (name = "uploads", description = "Media files: upload, complete, read"),
        (name = "jobs", description = "Translation jobs"),
        (name = "account", description = "The signed-in user"),
        (name = "webhooks", description = "Job webhooks: endpoints told when jobs end, and their deliveries"),
        (name = "payments", description = "Payment provider webhooks"),
        (name = "storage", description = "The local store's signed links"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

/// Declares the `bearer` scheme the routes' `security(("bearer" = []))` refer to.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from POST /api/sessions, or an API key (octk_…) from POST /api/keys"))
                    .build(),
            ),
        );
    }
}

/// The document's global parts, which the router adds the paths to.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// This document.
#[utoipa::path(
    get,
    operation_id = "getOpenApi",
    path = "/api/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)),
    security(())
)]
pub async fn serve(Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>) -> impl IntoResponse {
    axum::Json(doc.as_ref().clone())
}
