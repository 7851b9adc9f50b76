#ifndef BLTCY_UPSTREAM_H
#define BLTCY_UPSTREAM_H

/*
 * One transfer to the old gateway (upstream.c): the client's body
 * streamed up, the answer streamed down as it arrives.
 */

#include <stdint.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "util.h"

/*
 * Sent with every answer, relayed or the gateway's own: an answer is
 * data for a program, never a page of the gateway's origin, so a browser
 * that is led to one must not sniff it into HTML, run or load anything in
 * it, or frame it; sandbox also takes the origin away from it, so no
 * cookie or storage of the gateway's host is reachable. An upstream's own
 * X-Content-Type-Options and Content-Security-Policy are replaced.
 */
#define RELAY_SAFE_HEADERS						\
	"X-Content-Type-Options: nosniff\r\n"				\
	"Content-Security-Policy: default-src 'none'; "			\
	"frame-ancestors 'none'; sandbox\r\n"

/* Why a transfer failed, as far as the transport tells. */
enum up_err {
	UPE_NONE,
	UPE_REFUSED,
	UPE_DNS,
	UPE_TLS,
	UPE_CONNECT,
	UPE_CONNECT_TIMEOUT,
	UPE_HEADER_TIMEOUT,
	UPE_TIMEOUT,
	UPE_LOST,
	UPE_BAD_URL,	/* libcurl refused the request's URL: not the channel's */
	UPE__MAX
};

/* The words for an error in a client's answer and the log ("connection
 * refused"), and its metric label ("refused"). */
const char *up_err_reason(enum up_err);
const char *up_err_label(enum up_err);

/* The Content-Encoding of an answer, as far as the task id scan reads it. */
enum up_coding { UPC_IDENTITY, UPC_GZIP, UPC_DEFLATE, UPC_BR, UPC_OTHER };

struct up_result {
	int		 status;	/* upstream HTTP status, 0 if none */
	int		 headers_sent;	/* response headers reached the client */
	int		 withheld;	/* a final answer kept back (hold_*) */
	enum up_err	 err;
	int		 client_gone;
	int		 answer_refused;	/* before_answer kept it back */
	int		 body_too_large;
	int		 nothing_sent;	/* failed before any request byte */
	int		 json;		/* Content-Type says JSON */
	enum up_coding	 coding;	/* Content-Encoding */
	int		 capture_overflow;	/* capture unusable: over cap,
					   undecodable or not decoded */
	long long	 content_length;	/* of the answer, -1 unknown */
	int64_t		 bytes_out;
	struct buf	 hdrs;		/* the answer's header block */
	struct buf	 held_body;	/* body of a withheld answer */
	struct buf	 capture;	/* JSON answer kept for task ids */
	char		 errbuf[CURL_ERROR_SIZE];
};

struct upstream_req {
	FCGX_Request		*fr;
	const char		*request_id;
	const char		*method;
	const char		*url;		/* full upstream URL */
	const char		*key;		/* channel key, never logged */
	const char		*proxy;		/* "" = RELAY_PROXY or environment */
	long long		 content_length;	/* -1 unknown */
	const struct buf	*held;		/* body prefix already read */
	int			 held_all;	/* held is the whole body */
	int			 hold_401;	/* keep a 401 back (retry elsewhere) */
	int			 hold_5xx;	/* keep a 502/503/504 back */
	int			 hold_429;	/* keep a 429 back (another key) */
	int			 capture;	/* keep a JSON answer for task ids */
	int			 capture_any;	/* keep any answer (not only JSON) */
	const char		*extra_headers;	/* lines the relay adds, or NULL */
	struct buf		*keep_headers;	/* gets the header lines relayed */
	/*
	 * Called before the first byte of an answer goes to the client
	 * (NULL: none); -1 keeps the answer back: nothing of it is sent,
	 * the transfer stops, and answer_refused is set.
	 */
	int			(*before_answer)(void *);
	void			*arg;
};

/*
 * Forward one request; the answer streams to the client unless it is a
 * withheld status, which upstream_release sends later (or the caller
 * drops it to try another channel). up_result_free after each call.
 */
void	 upstream_forward(CURL *, const struct upstream_req *, struct up_result *);
/* The worker process's share handle (DNS, TLS sessions), or NULL. */
extern CURLSH	*upstream_share;
int	 upstream_release(const struct upstream_req *, struct up_result *);
void	 up_result_free(struct up_result *);

const char *http_reason(int);

/*
 * A request of the relay's own (a task's poll, a key's probe) made ready
 * on curl, reset first: method ("GET", "HEAD" or "POST" with no body) of
 * url, with key as its bearer and extra (a header line) if not NULL,
 * through proxy (a channel's; "" for RELAY_PROXY), never redirected nor
 * sent to a link-local or metadata address, for at most timeout seconds;
 * the answer's body to write(data), an error's words to errbuf. *hl
 * holds the headers until own_request_done, after the transfer. 0, or
 * -1 when memory ran out (nothing is held).
 */
int	 own_request(CURL *, const char *method, const char *url,
	    const char *key, const char *extra, const char *proxy, long timeout,
	    curl_write_callback write, void *data, char *errbuf,
	    struct curl_slist **hl);
/* The headers of own_request wiped (the key is one) and freed. */
void	 own_request_done(CURL *, struct curl_slist *);

#endif
