#ifndef BLTCY_ADMIN_H
#define BLTCY_ADMIN_H

/*
 * bltcy-admin.cgi: one CGI request per process. request.c reads the
 * request into a struct req; main.c finds its page in the page table,
 * checks the session and (for every POST) the CSRF token (session.c) and
 * runs the page; the page writes HTML through the one escaping writer
 * (common/html.h) into req->out with the helpers of reply.c, which sends
 * it. What a request holds is freed by request_free alone.
 */
#include <stddef.h>

#include "db.h"
#include "fieldlimits.h"
#include "form.h"
#include "html.h"
#include "i18n.h"
#include "util.h"

#define PAGE_MAX	(4 * 1024 * 1024)	/* one rendered page */
#define HDRS_MAX	4096

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

	struct db	*db;		/* admin_sql: what the pages read */
	struct db	*store;		/* store_sql: every write (common/store.c) */

	const char	*ctype;		/* NULL: an HTML page */
	struct buf	 hdrs;		/* extra response header lines */
	struct html	 out;
};

/* What a redirect after a successful POST tells the next page (?ok=N). */
enum flash { FL_NONE, FL_SAVED, FL_DELETED, FL_STATUS, FL_SLASH, FL__MAX };

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

/*
 * ---- pages (pages_*.c, static.c) ----
 * Each renders into r->out and returns the HTTP status.
 */
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
