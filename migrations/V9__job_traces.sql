-- The W3C traceparent of the request that created a job (telemetry.otlp_endpoint): the
-- worker's attempts at the job continue that trace. NULL when traces were off.
ALTER TABLE jobs ADD COLUMN traceparent text;
