#include "admin.h"
#define STUB(fn) int fn(struct req *r) { error_page(r, 404, L_NOT_FOUND, NULL); return 404; }
STUB(pg_dashboard)
STUB(pg_tokens)
STUB(pg_token_form)
STUB(pg_token_save)
STUB(pg_token_toggle)
STUB(pg_token_delete)
STUB(pg_users)
STUB(pg_user_form)
STUB(pg_user_save)
STUB(pg_logs)
