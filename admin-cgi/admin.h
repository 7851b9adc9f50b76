#ifndef BLTCY_ADMIN_H
#define BLTCY_ADMIN_H

/*
 * bltcy-admin.cgi: one CGI request per process. main.c reads the request
 * into a struct req, checks the session and the CSRF token, and calls the
 * page's handler from the page table; the handler writes HTML through the
 * one escaping writer (common/html.h) into req->out, and main.c sends it.
 */
#include <stddef.h>

#include "db.h"
#include "fieldlimits.h"
#include "html.h"
#include "util.h"

#define BODY_MAX	(64 * 1024)	/* urlencoded form bodies */
#define PAGE_MAX	(4 * 1024 * 1024)	/* one rendered page */
#define HDRS_MAX	4096

/* ---- form fields: the allow-list (form.c) ---- */
enum field {
	F_CSRF, F_USERNAME, F_PASSWORD, F_ID, F_NAME, F_TYPE, F_BASE_URL,
	F_KEY, F_STATUS, F_PRIORITY, F_WEIGHT, F_GROUP, F_MODELS, F_SETTING,
	F_REMARK, F_AUTO_BAN, F_QUOTA, F_UNLIMITED, F_EXPIRES, F_MODEL_LIMITS,
	F_ALLOW_IPS, F_ROLE, F_DISPLAY, F_USER, F_TOKEN, F_SERVICE, F_CHANNEL,
	F_FROM, F_TO, F_PAGE, F_FLASH, F_MODEL, F_FIELD, F_VALUE, F_MULTIPLIER,
	F_SURCHARGE, F_NOTE, F_STATE, F_DAY_FROM, F_DAY_TO,
	F__MAX
};

enum validator {
	V_LINE,		/* one line of UTF-8 text, no control bytes */
	V_TEXT,		/* several lines: V_LINE plus \r \n \t */
	V_INT,		/* optional '-' and up to 18 digits */
	V_DATETIME,	/* YYYY-MM-DDTHH:MM[:SS] (datetime-local) */
	V_DATE,		/* YYYY-MM-DD (date) */
	V__MAX
};

struct field_def {
	const char	*name;
	enum validator	 v;
	size_t		 max;	/* longest value in bytes */
	size_t		 chars;	/* and in characters of UTF-8 (0: max only) */
};
extern const struct field_def fields[F__MAX];

/*
 * Decoded values of the allowed fields of one urlencoded string. Values
 * live in arena; a field sent twice keeps its first value; fields not in
 * the table are dropped. bad[f] is set when a value was too long
 * (BAD_LONG) or failed its validator (BAD_FORMAT); v[f] is then NULL.
 * Nothing is ever cut to fit.
 */
#define BAD_FORMAT	1
#define BAD_LONG	2
struct form {
	char		*arena;
	size_t		 arenasz;
	const char	*v[F__MAX];
	unsigned char	 bad[F__MAX];
};

/* 0 ok, -1 malformed (bad %-escape) or out of memory. */
int	 form_parse(struct form *, const char *in, size_t len);
void	 form_free(struct form *);
int	 valid(enum validator, const char *s, size_t len);
/* Characters of UTF-8 in n bytes of valid UTF-8. */
size_t	 utf8_chars(const char *s, size_t n);

/* Value of cookie name in a Cookie header into out. 0 found, -1 not. */
int	 cookie_get(const char *header, const char *name, char *out,
	    size_t outsz);

/* ---- labels (i18n.c) ---- */
#include "labels.h"

enum lang { LANG_ZH, LANG_EN, LANG__MAX };
enum lang lang_pick(const char *accept_language);
const char *lbl(enum lang, enum label);

/* ---- the request ---- */
enum method { M_GET, M_POST, M__MAX };

struct me {
	long long	 id;
	long long	 role;
	char		 username[LIM_BYTES(LIM_USERNAME)];
};

struct req {
	enum method	 method;
	const char	*path;		/* PATH_INFO, "/" at least */
	const char	*base;		/* SCRIPT_NAME, e.g. "/admin" */
	const char	*ip;
	int		 https;
	enum lang	 lang;
	const char	*cookie;
	struct form	 q;		/* query string */
	struct form	 f;		/* POST body (urlencoded) */
	int		 body_bad;	/* too large, wrong type, malformed */

	struct me	 me;		/* id 0 when not logged in */
	char		 csrf[64];	/* token of this session / login form */

	struct db	*db;		/* admin_sql */
	struct db	*store;		/* store_sql, for common/store.c */

	int		 status;
	const char	*ctype;
	struct buf	 hdrs;		/* extra response header lines */
	struct html	 out;
};

/* Value of field f: POST body, else query string; NULL when absent. */
const char *fv(const struct req *, enum field);
/* BAD_LONG or BAD_FORMAT when the field was sent and refused, else 0. */
int	 fbad(const struct req *, enum field);
/* Integer field: def when absent; -1 when bad or out of range. */
int	 fint(const struct req *, enum field, long long def, long long min,
	    long long max, long long *out);

#define T(r, l)	lbl((r)->lang, (l))

/*
 * Read a field for a form being saved; problems are appended to errs as
 * lines naming the field's label ("格式无效：优先级").
 */
#define ERRS_MAX	4096
const char *field_text(const struct req *, struct buf *errs, enum field,
	    enum label, int required);
long long field_int(const struct req *, struct buf *errs, enum field,
	    enum label, long long def, long long min, long long max);
/* "Too long: <label> (at most <bytes> bytes)" into errs. */
void	 too_long(const struct req *, struct buf *errs, enum label,
	    size_t bytes);

/* What a redirect after a successful POST tells the next page (?ok=N). */
enum flash { FL_NONE, FL_SAVED, FL_DELETED, FL_STATUS, FL_SLASH, FL__MAX };

/* ---- response helpers (main.c) ---- */
void	 add_header(struct req *, const char *name, const char *value);
void	 redirect(struct req *, const char *path, int flash);
void	 page_begin(struct req *, enum label title);
void	 page_end(struct req *);
/* A one-button POST form for a row: action path, row id, status (0: none). */
void	 post_button(struct req *, const char *action, long long id,
	    int status, enum label, int danger);
/*
 * Rows of statement stmt through fn (which gets r as its arg), a row
 * saying `empty` when there are none, then the table's end. -1 db error.
 */
int	 table_rows(struct req *, int stmt, const struct dbv *, size_t,
	    db_row_fn, int cols, enum label empty);
void	 csrf_field(struct req *);
/*
 * The links to the page before and after of a paged list at path,
 * keeping its filter: query is "k=v&k=v" with the values %u-encoded.
 */
void	 pager(struct req *, const char *path, const char *query,
	    long long page, long long last);
/* An <option> for each configured service, selected the one named. */
void	 service_options(struct req *, const char *selected);
void	 error_page(struct req *, int status, enum label title,
	    const char *detail);
void	 msg_box(struct req *, int ok, const char *text);
void	 fmt_time(long long t, char *out, size_t outsz);
/* "a,b" -> "a\nb": a stored list shown one item per line. */
void	 list_lines(const char *list, char *out, size_t outsz);
int	 parse_datetime(const char *s, long long *out);
/*
 * "YYYY-MM-DD": the first second (server time) of that day plus days
 * (1: the end of the day, for a range's end). 1 empty, 0 ok, -1 bad.
 */
int	 parse_date(const char *s, int days, long long *out);

/* ---- session and login (session.c) ---- */
#define SESSION_COOKIE	"bltcy_session"
#define PRE_COOKIE	"bltcy_pre"
#define COOKIE_PATH(r)	((r)->base[0] ? (r)->base : "/")

#define STAMP_LEN	22	/* characters of the user stamp in a session */

int	 user_stamp(const char *hash, long long role, long long status,
	    long long gen, char out[STAMP_LEN + 1]);
int	 session_make(long long uid, const char *stamp, char *out,
	    size_t outsz);
/*
 * After this session's own user was changed (password, role): a new
 * session cookie bound to the user's new state, and the old one revoked.
 * Nothing when the user may no longer log in. -1 db error.
 */
int	 session_renew(struct req *);
int	 session_start(struct req *, long long uid, const char *stamp);
/* 0 with uid and the payload (the CSRF binding), -1 bad or expired. */
int	 session_parse(const char *cookie, long long now, long long *uid,
	    char *payload, size_t payloadsz);
void	 csrf_for(const char *binding, char out[64]);
int	 session_load(struct req *);
int	 pre_session(struct req *);
int	 csrf_ok(struct req *);
int	 session_revoke(struct req *);
/* 'pair:', an address of at most 48 bytes, '|' and a user name */
#define PAIR_KEY_MAX	(5 + 48 + 1 + LIM_BYTES(LIM_USERNAME) + 1)
int	 throttle_take(struct req *, const char *user, int *addr_locked,
	    long long *retry_s);
void	 throttle_clear(struct req *, const char *user);

/* ---- SQL (sql.c) ---- */
enum admin_stmt {
	AS_USER_AUTH, AS_USER_SESSION, AS_REVOKE, AS_REVOKED_PURGE,
	AS_THROTTLE_SEED, AS_THROTTLE_READ, AS_THROTTLE_COUNT,
	AS_THROTTLE_CLEAR, AS_THROTTLE_GIVE_BACK, AS_THROTTLE_PURGE,
	AS_COUNTS, AS_RECENT_ERRORS, AS_AUTO_DISABLED, AS_CHART,
	AS_CHANNEL_LIST, AS_CHANNEL_GET, AS_CHANNEL_TESTED,
	AS_TOKEN_LIST, AS_TOKEN_GET, AS_TOKEN_UPDATE, AS_TOKEN_STATUS,
	AS_TOKEN_DELETE,
	AS_USER_LIST, AS_USER_GET, AS_USER_UPDATE, AS_USER_PASSWORD,
	AS_LOGS_PAGE, AS_LOGS_TOTAL,
	AS_TASK_STATES,
	AS_PRICE_CHANNELS, AS_PRICE_OPTIONS,
	AS_TASKS_PAGE, AS_TASKS_TOTAL,
	AS__MAX
};
extern const char *const admin_sql[AS__MAX];

/* Column helpers for row callbacks. */
const char *col_s(const struct dbv *);	/* "" for NULL */
long long col_i(const struct dbv *);	/* 0 for NULL; parses strings */

/* ---- task states (pages_tasks.c; the dashboard counts by them) ---- */
enum task_state_id {
	TS_SUBMITTED, TS_RUNNING, TS_SUCCEEDED, TS_FAILED, TS_TIMEOUT,
	TS_REFUNDED, TASK_STATE__MAX
};
struct task_state {
	const char	*name;		/* bltcy_tasks.state */
	enum label	 label;
	const char	*badge;		/* class of its badge */
};
extern const struct task_state task_states[TASK_STATE__MAX];
const struct task_state *task_state_of(const char *name);	/* or NULL */

/* ---- pages ---- */
int	 pg_login(struct req *);
int	 pg_login_post(struct req *);
int	 pg_logout(struct req *);
int	 pg_css(struct req *);
int	 pg_favicon(struct req *);
int	 pg_dashboard(struct req *);
int	 pg_channels(struct req *);
int	 pg_channel_form(struct req *);
int	 pg_channel_save(struct req *);
int	 pg_channel_toggle(struct req *);
int	 pg_channel_delete(struct req *);
int	 pg_channel_test(struct req *);
int	 pg_tokens(struct req *);
int	 pg_token_form(struct req *);
int	 pg_token_save(struct req *);
int	 pg_token_toggle(struct req *);
int	 pg_token_delete(struct req *);
int	 pg_users(struct req *);
int	 pg_user_form(struct req *);
int	 pg_user_save(struct req *);
int	 pg_logs(struct req *);
int	 pg_prices(struct req *);
int	 pg_price_add(struct req *);
int	 pg_price_delete(struct req *);
int	 pg_tasks(struct req *);

#endif
