//! The HTTP engines against a local server with the services' endpoint shapes.
