-- Authentication and roles: a role and an Argon2id password hash per user,
-- bearer sessions stored as the SHA-256 of their token, and failed logins
-- for rate limiting.

ALTER TABLE users
    ADD COLUMN role text NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
    -- NULL: the user cannot log in (created without a password).
    ADD COLUMN password_hash text CHECK (char_length(password_hash) <= 512);

-- A role or password change is a change of the row: the version (and so
-- the ETag and every cached copy) moves with it.
CREATE OR REPLACE FUNCTION users_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.name, NEW.email, NEW.role, NEW.password_hash)
       IS NOT DISTINCT FROM (OLD.name, OLD.email, OLD.role, OLD.password_hash) THEN
        NEW.version := OLD.version;
        NEW.updated_at := OLD.updated_at;
    ELSE
        NEW.version := OLD.version + 1;
        NEW.updated_at := now();
    END IF;
    NEW.inserted_at := OLD.inserted_at;
    RETURN NEW;
END;
$$;

-- Only the token's SHA-256 is stored: a copy of this table grants nothing.
-- Deleting a user deletes its sessions (and so fires their delete trigger).
CREATE TABLE sessions (
    token_hash bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);

-- The token cache's key: the first 8 bytes of the hash, big-endian, as a
-- non-negative 63-bit integer. app/auth.py computes the same in Python.
CREATE FUNCTION session_cache_key(token_hash bytea) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (('x' || encode(substr(token_hash, 1, 8), 'hex'))::bit(64) >> 1)::bigint
$$;

-- A revoked, expired-and-pruned or cascaded session is announced on the
-- users_changed channel as 't:<cache key>': every process evicts that
-- token from its token cache.
CREATE FUNCTION sessions_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('users_changed', 't:' || session_cache_key(OLD.token_hash)::text);
    RETURN OLD;
END;
$$;

CREATE TRIGGER sessions_notify AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION sessions_notify();

CREATE FUNCTION sessions_notify_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('users_changed', 't:*');
    RETURN NULL;
END;
$$;

CREATE TRIGGER sessions_notify_truncate AFTER TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_notify_truncate();

-- A cached session carries its user's role: when the role changes, every
-- session of that user is evicted everywhere, whoever changed it.
CREATE FUNCTION users_role_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('users_changed', 't:' || session_cache_key(token_hash)::text)
        FROM sessions WHERE user_id = NEW.id;
    RETURN NEW;
END;
$$;

CREATE TRIGGER users_role_notify AFTER UPDATE OF role ON users
    FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role)
    EXECUTE FUNCTION users_role_notify();

-- Failed logins, for rate limiting across every worker process and host.
-- subject: 'e:' || lower(email) (the account, known or not) or
-- 'a:' || client address. Rows older than the window are pruned as new
-- failures are recorded.
CREATE TABLE login_failures (
    subject   text        NOT NULL CHECK (char_length(subject) <= 300),
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_subject ON login_failures (subject, failed_at);
CREATE INDEX login_failures_failed_at ON login_failures (failed_at);
