-- Every table of the schema with its exact row count, for `octavia migrate` and the demo.
-- query_to_xml runs a count per table inside this one statement, so no SQL is assembled
-- in Rust; format(%I) quotes the table name.
SELECT t.table_name::text AS name,
       (xpath('/row/n/text()',
              query_to_xml(format('SELECT count(*) AS n FROM %I', t.table_name), false, true, '')))[1]::text::bigint AS row_count
FROM information_schema.tables t
WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE'
ORDER BY t.table_name
