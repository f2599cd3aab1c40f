-- Fewer writes per imported declaration (docs/performance.md). Keep in step with
-- ../sqlite/0012_lean_import.sql (which also clusters the ledger's postings on their key; a
-- PostgreSQL table is a heap beside its primary key either way).
--
-- A re-sent file is now recognised through the accepted declaration of the same employer,
-- period and form (found anyway by the import) and compared by digest: the unique index of
-- digests, a random key written with every declaration, is no longer needed.
DROP INDEX declarations_digest;
