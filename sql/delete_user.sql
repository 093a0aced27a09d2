-- Deletes user $1 (after their media files): projects, sessions and credit entries go with
-- them (ON DELETE CASCADE); jobs and payments stay, their user_id set to NULL.
DELETE FROM users WHERE id = $1
