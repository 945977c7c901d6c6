-- Runs once, when the PostgreSQL volume is created: the CDP database comes from POSTGRES_DB,
-- the tracker store gets its own database (Rasa's tables must not share the CDP's schema).
CREATE DATABASE rasa_tracker OWNER assistant;
