/*
 * The bench's floor: the least a FastCGI program of the relay's shape can
 * do, so that `make bench` can say how much of the distance to nginx
 * proxy_pass is the shape (front server, FastCGI, libcurl) and how much is
 * the relay's own work (token, metering, usage rows).
 *
 *	bench-floor NPROC [BASE_URL]
 *
 * Run under spawn-fcgi (the listening socket is fd 0); forks to NPROC
 * processes. Without BASE_URL each request is answered at once with a
 * fixed task-submission body. With it, each is sent on to BASE_URL plus
 * the request URI through one persistent libcurl handle per process, and
 * the answer is relayed back: no token, no database, no log.
 */
#include <curl/curl.h>
#include <fcgiapp.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define BODY_MAX	65536

static const char answer[] =
    "{\"code\":0,\"message\":\"SUCCEED\",\"data\":{\"task_id\":\"floor\","
    "\"task_status\":\"submitted\"}}";

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	FCGX_Request	*fr = arg;
	size_t		 len = size * n;

	if (len > 12 && strncmp(p, "HTTP/", 5) == 0) {
		const char *sp = memchr(p, ' ', len);
		if (sp != NULL && p + len - sp > 3)
			FCGX_FPrintF(fr->out, "Status: %.3s\r\n", sp + 1);
	} else if (len < 11 || strncasecmp(p, "connection:", 11) != 0)
		FCGX_PutStr(p, (int)len, fr->out);
	return len;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	FCGX_Request	*fr = arg;

	return FCGX_PutStr(p, (int)(size * n), fr->out) < 0 ? 0 : size * n;
}

static void
forward(CURL *c, FCGX_Request *fr, const char *base, char *body)
{
	struct curl_slist	*h = NULL;
	const char		*uri, *v;
	char			 url[8192], line[1024];
	int			 n = 0, got;

	while (n < BODY_MAX &&
	    (got = FCGX_GetStr(body + n, BODY_MAX - n, fr->in)) > 0)
		n += got;
	if ((uri = FCGX_GetParam("REQUEST_URI", fr->envp)) == NULL)
		uri = "/";
	snprintf(url, sizeof(url), "%s%s", base, uri);
	if ((v = FCGX_GetParam("HTTP_AUTHORIZATION", fr->envp)) != NULL) {
		snprintf(line, sizeof(line), "Authorization: %s", v);
		h = curl_slist_append(h, line);
	}
	if ((v = FCGX_GetParam("CONTENT_TYPE", fr->envp)) != NULL) {
		snprintf(line, sizeof(line), "Content-Type: %s", v);
		h = curl_slist_append(h, line);
	}
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)n);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, fr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, fr);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(c) != CURLE_OK)
		FCGX_FPrintF(fr->out, "Status: 502 Bad Gateway\r\n\r\n");
	curl_slist_free_all(h);
}

int
main(int argc, char **argv)
{
	FCGX_Request	 fr;
	CURL		*c;
	char		*body;
	const char	*base = argc > 2 ? argv[2] : NULL;
	int		 i, nproc = argc > 1 ? atoi(argv[1]) : 1;

	if (nproc < 1 || nproc > 256) {
		fprintf(stderr, "usage: bench-floor NPROC [BASE_URL]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i < nproc; i++)
		if (fork() == 0)
			break;
	if (FCGX_Init() != 0 || FCGX_InitRequest(&fr, 0, 0) != 0 ||
	    (c = curl_easy_init()) == NULL || (body = malloc(BODY_MAX)) == NULL)
		return 1;
	while (FCGX_Accept_r(&fr) >= 0) {
		if (base != NULL)
			forward(c, &fr, base, body);
		else
			FCGX_FPrintF(fr.out, "Status: 200 OK\r\nContent-Type: "
			    "application/json\r\nContent-Length: %d\r\n\r\n%s",
			    (int)sizeof(answer) - 1, answer);
		FCGX_Finish_r(&fr);
	}
	return 0;
}
