-- There is always at least one admin. Two admins demoting or deleting
-- each other at once each saw the other still an admin; the check is
-- therefore made here, where concurrency is decided: whoever would take
-- the role away from an admin first takes one fixed transaction-level
-- advisory lock, so such changes are serialised, and then (a fresh
-- snapshot per statement in READ COMMITTED) sees every one committed
-- before it. The loser gets SQLSTATE UM001, which the service answers
-- with 409 (problem type last-admin).
CREATE FUNCTION users_keep_an_admin() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.role <> 'admin' OR (TG_OP = 'UPDATE' AND NEW.role = 'admin') THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END IF;
    -- 'usermgmt' 'admins' as one bigint: a constant no other lock uses.
    PERFORM pg_advisory_xact_lock(8463219374000561011);
    IF NOT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND id <> OLD.id) THEN
        RAISE EXCEPTION 'the last admin cannot be demoted or deleted'
            USING ERRCODE = 'UM001';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER users_keep_an_admin BEFORE UPDATE OF role OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_keep_an_admin();
