-- Every committed change to a user is announced on the users_changed
-- channel as '<id>:<version>' (version 0 for a delete). Being a trigger,
-- nothing that writes the table can bypass it; caches in every worker
-- process and on every host evict on it.
CREATE FUNCTION users_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('users_changed', OLD.id::text || ':0');
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.version = OLD.version AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    PERFORM pg_notify('users_changed', NEW.id::text || ':' || NEW.version::text);
    IF TG_OP = 'UPDATE' AND NEW.id <> OLD.id THEN
        PERFORM pg_notify('users_changed', OLD.id::text || ':0');
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_notify();

-- TRUNCATE removes rows without row triggers: announce it as a flush.
CREATE FUNCTION users_notify_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('users_changed', '*');
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_notify_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION users_notify_truncate();
