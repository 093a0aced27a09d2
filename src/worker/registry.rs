//! The handlers a worker knows, by job type.

use super::handler::Handler;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Default, Clone)]
pub struct Registry {
    handlers: BTreeMap<String, Arc<dyn Handler>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds a handler. Registering a job type twice is an error: which one would run
    /// would otherwise depend on the order of registration.
    pub fn register(&mut self, handler: impl Handler) -> Result<&mut Self> {
        self.register_shared(Arc::new(handler))
    }

    /// [`Registry::register`] for a handler already shared.
    pub fn register_shared(&mut self, handler: Arc<dyn Handler>) -> Result<&mut Self> {
        let job_type = handler.job_type();
        if self.handlers.contains_key(job_type) {
            return Err(Error::Conflict(format!(
                "job type `{job_type}` is registered twice"
            )));
        }
        self.handlers.insert(job_type.to_string(), handler);
        Ok(self)
    }

    pub fn get(&self, job_type: &str) -> Option<Arc<dyn Handler>> {
        self.handlers.get(job_type).cloned()
    }

    pub fn job_types(&self) -> Vec<String> {
        self.handlers.keys().cloned().collect()
    }
}
