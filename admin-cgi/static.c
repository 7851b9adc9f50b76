/*
 * The stylesheet, served at /static/admin.css so that the pages need no
 * inline style (the Content-Security-Policy allows styles from 'self' only).
 */
#include <string.h>

#include "admin.h"
#include "reply.h"

static const char css[] =
":root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--bg:#f6f7f9;--card:#fff;"
"--acc:#2563eb;--acc-d:#1d4ed8;--ok:#067647;--ok-bg:#ecfdf3;--err:#b42318;"
"--err-bg:#fef3f2;--warn:#b54708;--warn-bg:#fffaeb}\n"
"*{box-sizing:border-box}\n"
"body{margin:0;font:14px/1.5 system-ui,-apple-system,\"Segoe UI\",\"PingFang SC\","
"\"Noto Sans CJK SC\",\"Microsoft YaHei\",sans-serif;color:var(--fg);background:var(--bg)}\n"
"a{color:var(--acc);text-decoration:none}a:hover{text-decoration:underline}\n"
"header.top{display:flex;align-items:center;gap:24px;padding:0 24px;height:52px;"
"background:#111827;color:#e5e7eb}\n"
"header.top .brand{color:#fff;font-weight:600;font-size:15px}\n"
"header.top nav{display:flex;gap:4px;flex:1}\n"
"header.top nav a{color:#cbd5e1;padding:6px 12px;border-radius:6px}\n"
"header.top nav a.on,header.top nav a:hover{background:#1f2937;color:#fff;text-decoration:none}\n"
"header.top .who{display:flex;align-items:center;gap:12px;margin:0;color:#9ca3af}\n"
"header.top .who b{color:#e5e7eb;font-weight:500}\n"
"main{max-width:1280px;margin:0 auto;padding:24px}\n"
"h1{font-size:20px;margin:0 0 16px}h2{font-size:16px;margin:24px 0 12px}\n"
".card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:20px}\n"
".narrow{max-width:420px}\n"
"form.card{display:grid;gap:14px;max-width:760px}\n"
"form.card.narrow{max-width:420px}\n"
"label{display:grid;gap:4px;font-weight:500}\n"
"label.check{display:flex;align-items:center;gap:8px;font-weight:400}\n"
"label small,.help{color:var(--muted);font-weight:400;font-size:12px}\n"
"input,select,textarea{font:inherit;color:inherit;padding:7px 10px;border:1px solid #d0d5dd;"
"border-radius:6px;background:#fff;width:100%}\n"
"input[type=checkbox]{width:auto}\n"
"input:not([type=checkbox]),select{height:36px;min-width:0}\n"
"textarea{min-height:92px;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}\n"
"input:focus,select:focus,textarea:focus{outline:2px solid #bfd3fe;border-color:var(--acc)}\n"
".row{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:14px}\n"
"button,.btn{font:inherit;font-weight:500;padding:7px 14px;border-radius:6px;border:1px solid var(--acc);"
"background:var(--acc);color:#fff;cursor:pointer;display:inline-block}\n"
"button:hover,.btn:hover{background:var(--acc-d);text-decoration:none}\n"
"button.ghost,.btn.ghost{background:#fff;color:var(--fg);border-color:#d0d5dd}\n"
"button.ghost:hover,.btn.ghost:hover{background:#f2f4f7}\n"
"button.danger{background:#fff;color:var(--err);border-color:#fda29b}\n"
"button.danger:hover{background:var(--err-bg)}\n"
"button.link{background:none;border:0;color:#cbd5e1;padding:0}\n"
"button.link:hover{color:#fff;background:none;text-decoration:underline}\n"
"button.small,.btn.small{padding:3px 9px;font-size:13px}\n"
".actions{display:flex;gap:8px;align-items:center}\n"
".toolbar{display:flex;justify-content:space-between;align-items:center;margin-bottom:12px}\n"
"table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);"
"border-radius:10px;overflow:hidden}\n"
"th,td{padding:9px 12px;text-align:left;border-bottom:1px solid var(--line);vertical-align:middle;"
"white-space:nowrap}\n"
"th{background:#f9fafb;color:var(--muted);font-weight:500;font-size:12px;white-space:nowrap}\n"
"tr:last-child td{border-bottom:0}\n"
"td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\n"
"td.ops{white-space:nowrap}td.ops form{display:inline}\n"
"td.wrap{white-space:normal;min-width:220px;max-width:420px;word-break:break-all;color:var(--muted)}\n"
"code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}\n"
".badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:500;"
"white-space:nowrap}\n"
".badge.on{background:var(--ok-bg);color:var(--ok)}\n"
".badge.off{background:#f2f4f7;color:#475467}\n"
".badge.bad{background:var(--err-bg);color:var(--err)}\n"
".tag{display:inline-block;padding:0 6px;margin:0 4px 2px 0;border:1px solid var(--line);"
"border-radius:4px;font-size:12px;background:#f9fafb}\n"
".msg{padding:10px 14px;border-radius:8px;margin:0 0 16px;border:1px solid}\n"
".msg.ok{background:var(--ok-bg);color:var(--ok);border-color:#abefc6}\n"
".msg.err{background:var(--err-bg);color:var(--err);border-color:#fecdca;white-space:pre-line}\n"
".key{font-family:ui-monospace,monospace;font-size:15px;padding:10px 12px;background:#111827;"
"color:#a7f3d0;border-radius:6px;word-break:break-all;user-select:all}\n"
".stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin-bottom:8px}\n"
".stat{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}\n"
".stat .v{font-size:24px;font-weight:600;font-variant-numeric:tabular-nums}\n"
".stat .k{color:var(--muted);font-size:12px}\n"
"a.stat{color:inherit}a.stat:hover{border-color:var(--acc);text-decoration:none}\n"
".charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:12px}\n"
".chart{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px}\n"
".chart h2{margin:0 0 8px;font-size:14px}\n"
".chart svg{width:100%;height:auto;display:block}\n"
".filters{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:10px;align-items:end;"
"background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px;margin-bottom:12px}\n"
".totals{display:flex;gap:24px;margin:0 0 10px;color:var(--muted)}\n"
".totals b{color:var(--fg)}\n"
".pager{display:flex;gap:10px;align-items:center;margin-top:12px}\n"
".muted{color:var(--muted)}\n";

static const char favicon[] =
"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\">"
"<rect width=\"32\" height=\"32\" rx=\"7\" fill=\"#2563eb\"/>"
"<path d=\"M10 7h8a5 5 0 0 1 2.6 9.3A5.5 5.5 0 0 1 18.5 25H10z\" fill=\"#fff\"/></svg>\n";

int
pg_favicon(struct req *r)
{
	r->ctype = "image/svg+xml";
	add_header(r, "Cache-Control", "max-age=86400");
	if (buf_add(&r->out.b, favicon, sizeof(favicon) - 1) == -1)
		r->out.err = 1;
	return 200;
}

int
pg_css(struct req *r)
{
	r->ctype = "text/css; charset=utf-8";
	add_header(r, "Cache-Control", "max-age=3600");
	if (buf_add(&r->out.b, css, sizeof(css) - 1) == -1)
		r->out.err = 1;
	return 200;
}
