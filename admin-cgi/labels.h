/*
 * Every label of the admin pages, once: LABEL(id, Chinese, English). The
 * Chinese follows the seed (PRODUCTION_DEPLOYMENT.zh.md); i18n.c turns
 * this list into the table lbl() reads, labels.h into the enum.
 */
#ifndef BLTCY_LABELS_H
#define BLTCY_LABELS_H

#define LABELS \
LABEL(L_APP, "Bltcy 管理后台", "Bltcy admin") \
LABEL(L_LOGIN, "登录", "Log in") \
LABEL(L_LOGOUT, "退出登录", "Log out") \
LABEL(L_USERNAME, "用户名", "Username") \
LABEL(L_PASSWORD, "密码", "Password") \
LABEL(L_LOGIN_FAILED, "用户名或密码错误", "Wrong username or password") \
LABEL(L_LOGIN_LOCKED, "登录失败次数过多，请 15 分钟后再试", "Too many failed logins: try again in 15 minutes") \
LABEL(L_LOGIN_ADDR_LOCKED, "此地址登录失败次数过多，请 15 分钟后再试", "Too many failed logins from this address: try again in 15 minutes") \
LABEL(L_CSRF_FAILED, "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试", "The form expired or came from another site (CSRF check failed): reload the page and try again") \
LABEL(L_NOT_FOUND, "页面不存在", "Page not found") \
LABEL(L_METHOD, "不支持的请求方法", "Method not allowed") \
LABEL(L_BAD_REQUEST, "请求无效", "Bad request") \
LABEL(L_SERVER_ERROR, "服务器错误", "Server error") \
LABEL(L_DB_ERROR, "数据库暂时不可用，请稍后重试", "The database is unavailable; try again later") \
LABEL(L_DASHBOARD, "仪表盘", "Dashboard") \
LABEL(L_CHANNELS, "渠道", "Channels") \
LABEL(L_TOKENS, "令牌", "Tokens") \
LABEL(L_USERS, "用户", "Users") \
LABEL(L_LOGS, "使用日志", "Usage logs") \
LABEL(L_ADD_CHANNEL, "添加渠道", "Add channel") \
LABEL(L_EDIT_CHANNEL, "编辑渠道", "Edit channel") \
LABEL(L_CH_NAME, "渠道名称", "Channel name") \
LABEL(L_CH_TYPE, "渠道类型", "Channel type") \
LABEL(L_CH_TYPE55, "55 - 旧网关（Bltcy）", "55 - Old gateway (Bltcy)") \
LABEL(L_BASE_URL, "Base URL", "Base URL") \
LABEL(L_KEY, "密钥", "Key") \
LABEL(L_STATUS, "状态", "Status") \
LABEL(L_ENABLED, "启用", "Enabled") \
LABEL(L_DISABLED, "禁用", "Disabled") \
LABEL(L_AUTO_DISABLED, "自动禁用", "Auto-disabled") \
LABEL(L_PRIORITY, "优先级", "Priority") \
LABEL(L_WEIGHT, "权重", "Weight") \
LABEL(L_GROUP, "分组", "Group") \
LABEL(L_MODELS, "模型映射", "Models") \
LABEL(L_SETTING, "设置", "Setting") \
LABEL(L_REMARK, "备注", "Remark") \
LABEL(L_AUTO_BAN, "上游拒绝时自动禁用（AutomaticDisable*）", "Disable automatically when the upstream refuses (by the AutomaticDisable* options)") \
LABEL(L_KEYS, "密钥（进行中任务 / 上限）", "Keys (open jobs / cap)") \
LABEL(L_NO_CAP, "不限", "no cap") \
LABEL(L_MODELS_HELP, "一行一个基础名称（小写，不带版本号）：", "One base name per line (lower case, no version): ") \
LABEL(L_BASE_URL_HELP, "不要包含路径，不要以 / 结尾。✅ https://api.bltcy.ai ❌ https://api.bltcy.ai/kling", "No path and no trailing /. ✅ https://api.bltcy.ai ❌ https://api.bltcy.ai/kling") \
LABEL(L_KEY_HELP_NEW, "旧网关的 API 密钥（sk-xxx…）；多个密钥一行一个，轮流使用", "The old gateway's API key (sk-xxx…); several keys one per line, used in turn") \
LABEL(L_KEY_HELP_EDIT, "留空则保留当前密钥（修改 Base URL 的协议、主机、端口或代理时须重新填写）", "Leave empty to keep the current key (enter it again when the Base URL's scheme, host or port, or the proxy, changes)") \
LABEL(L_KEY_AGAIN, "修改了 Base URL 的协议、主机或端口（或代理），请重新填写密钥", "The Base URL's scheme, host or port (or the proxy) changed: enter the key again") \
LABEL(L_ADDR_LOOPBACK, "本机", "loopback") \
LABEL(L_ADDR_PRIVATE, "内网", "LAN") \
LABEL(L_ADDR_FORBIDDEN, "禁止的地址", "forbidden address") \
LABEL(L_KEY_SEALED, "已加密保存", "stored encrypted") \
LABEL(L_KEY_PLAIN, "明文保存（填写新密钥后将加密）", "stored in plain text (a new key is saved encrypted)") \
LABEL(L_SETTING_HELP, "JSON 对象；PassthroughQuota 为每次请求扣除的配额（默认 1000）", "A JSON object; PassthroughQuota is the quota charged per request (default 1000)") \
LABEL(L_SAVE, "保存", "Save") \
LABEL(L_CANCEL, "取消", "Cancel") \
LABEL(L_EDIT, "编辑", "Edit") \
LABEL(L_DELETE, "删除", "Delete") \
LABEL(L_ENABLE, "启用", "Enable") \
LABEL(L_DISABLE, "禁用", "Disable") \
LABEL(L_TEST, "测试", "Test") \
LABEL(L_ACTIONS, "操作", "Actions") \
LABEL(L_USED_QUOTA, "已用额度", "Used quota") \
LABEL(L_RESPONSE_TIME, "响应时间", "Response time") \
LABEL(L_NONE, "暂无数据", "Nothing yet") \
LABEL(L_SAVED, "已保存", "Saved") \
LABEL(L_DELETED, "已删除", "Deleted") \
LABEL(L_STATUS_CHANGED, "状态已更新", "Status changed") \
LABEL(L_SLASH_REMOVED, "已保存；已自动去掉 Base URL 末尾的 /", "Saved; the trailing / of the Base URL was removed") \
LABEL(L_TEST_RESULT, "测试结果", "Test result") \
LABEL(L_TEST_FAILED, "连接失败", "Connection failed") \
LABEL(L_HTTP_STATUS, "HTTP 状态", "HTTP status") \
LABEL(L_ELAPSED, "耗时", "Time") \
LABEL(L_NO_SUCH, "记录不存在", "No such record") \
LABEL(L_FIELD_BAD, "格式无效：", "Invalid value: ") \
LABEL(L_REQUIRED, "不能为空：", "Required: ") \
LABEL(L_TOO_LONG, "太长：", "Too long: ") \
LABEL(L_AT_MOST, "最多", "at most") \
LABEL(L_CHARS, "个字符", "characters") \
LABEL(L_BYTES, "字节", "bytes") \
LABEL(L_ADD_TOKEN, "添加令牌", "Add token") \
LABEL(L_EDIT_TOKEN, "编辑令牌", "Edit token") \
LABEL(L_NAME, "名称", "Name") \
LABEL(L_OWNER, "所属用户", "User") \
LABEL(L_QUOTA, "额度", "Quota") \
LABEL(L_REMAIN, "剩余额度", "Remaining quota") \
LABEL(L_UNLIMITED, "无限额度", "Unlimited") \
LABEL(L_EXPIRES, "过期时间", "Expires") \
LABEL(L_NEVER, "永不过期", "Never") \
LABEL(L_EXPIRES_HELP, "留空表示永不过期（服务器时间）", "Empty: never (server time)") \
LABEL(L_MODEL_LIMITS, "模型限制", "Model limits") \
LABEL(L_MODEL_LIMITS_HELP, "留空表示不限制；一行一个服务名", "Empty: no limit; one service per line") \
LABEL(L_ALLOW_IPS, "IP 白名单", "Allowed IPs") \
LABEL(L_ALLOW_IPS_HELP, "留空表示不限制；一行一个 IP 或 CIDR", "Empty: any; one address or CIDR per line") \
LABEL(L_TOKEN_KEY, "密钥", "Key") \
LABEL(L_TOKEN_CREATED, "令牌已创建。完整密钥只显示这一次，请立即复制保存：", "Token created. The full key is shown only this once: copy it now:") \
LABEL(L_EXPIRED, "已过期", "Expired") \
LABEL(L_EXHAUSTED, "额度用尽", "Exhausted") \
LABEL(L_NO_SUCH_USER, "用户不存在", "No such user") \
LABEL(L_BAD_IP, "IP 白名单格式无效：", "Invalid allowed IP: ") \
LABEL(L_LIMITS, "限制", "Limits") \
LABEL(L_IN_FLIGHT, "同时进行的请求", "Requests in flight") \
LABEL(L_OPEN_TASKS, "未完成的任务", "Open jobs") \
LABEL(L_RPM, "每分钟请求数", "Requests a minute") \
LABEL(L_LIMITS_HELP, "超过时返回 429；0 或留空表示不限制", "Past one: 429; 0 or empty: no limit") \
LABEL(L_NO_LIMIT, "不限", "none") \
LABEL(L_ADD_USER, "添加用户", "Add user") \
LABEL(L_EDIT_USER, "编辑用户", "Edit user") \
LABEL(L_DISPLAY_NAME, "显示名称", "Display name") \
LABEL(L_ROLE, "角色", "Role") \
LABEL(L_ROLE_COMMON, "普通用户", "User") \
LABEL(L_ROLE_ADMIN, "管理员", "Admin") \
LABEL(L_ROLE_ROOT, "超级管理员", "Root") \
LABEL(L_REQUESTS, "请求次数", "Requests") \
LABEL(L_NEW_PASSWORD, "新密码（留空不修改）", "New password (empty: unchanged)") \
LABEL(L_ROLE_TOO_HIGH, "不能授予高于自己的角色，也不能修改同级或更高级别的其他用户", "You cannot grant a role above your own, nor edit another user of your role or above") \
LABEL(L_TIME, "时间", "Time") \
LABEL(L_TYPE, "类型", "Type") \
LABEL(L_ALL, "全部", "All") \
LABEL(L_TYPE_CONSUME, "消费", "Consume") \
LABEL(L_TYPE_ERROR, "错误", "Error") \
LABEL(L_SERVICE, "服务", "Service") \
LABEL(L_CHANNEL_ID, "渠道 ID", "Channel ID") \
LABEL(L_TOKEN_NAME, "令牌名称", "Token name") \
LABEL(L_FROM, "开始时间", "From") \
LABEL(L_TO, "结束时间", "To") \
LABEL(L_FILTER, "筛选", "Filter") \
LABEL(L_CONTENT, "详情", "Details") \
LABEL(L_USE_TIME, "用时（秒）", "Time (s)") \
LABEL(L_ROWS, "条数", "Rows") \
LABEL(L_QUOTA_TOTAL, "额度合计", "Quota total") \
LABEL(L_PREV, "上一页", "Previous") \
LABEL(L_NEXT, "下一页", "Next") \
LABEL(L_PAGE, "页", "Page") \
LABEL(L_CH_ENABLED, "启用的渠道", "Enabled channels") \
LABEL(L_TOKEN_COUNT, "令牌", "Tokens") \
LABEL(L_USER_COUNT, "用户", "Users") \
LABEL(L_REQ_24H, "24 小时请求数", "Requests, 24 h") \
LABEL(L_QUOTA_24H, "24 小时消耗额度", "Quota, 24 h") \
LABEL(L_RECENT_ERRORS, "最近错误", "Recent errors") \
LABEL(L_NO_ERRORS, "暂无错误", "No errors") \
LABEL(L_CHART_REQ, "近 24 小时请求数（按服务）", "Requests in the last 24 hours, by service") \
LABEL(L_CHART_QUOTA, "近 24 小时消耗额度（按服务）", "Quota in the last 24 hours, by service") \
LABEL(L_HOURS_AGO, "小时前", "h ago") \
LABEL(L_NOW, "现在", "now") \
LABEL(L_SIGNED_IN, "当前用户：", "Signed in: ") \
LABEL(L_AUTO_DISABLED_CH, "已被自动禁用的渠道", "Channels disabled automatically") \
LABEL(L_TEST_NOTE, "测试会向 Base URL 发送一个 GET 请求（带密钥）", "Test sends one GET request (with the key) to the Base URL") \
LABEL(L_PRICES, "价格", "Prices") \
LABEL(L_TASKS, "任务", "Tasks") \
LABEL(L_BASE_PRICES, "基础价格（按服务）", "Base prices by service") \
LABEL(L_BASE_HELP, "请求的模型（请求体的 model 或 model_name，否则为服务名）在 ModelPrice 中有价格时按 ModelPrice 计费，否则按渠道的 PassthroughQuota 计费", "Where ModelPrice names the request's model (the body's model or model_name, else the service), ModelPrice is the base; otherwise the channel's PassthroughQuota") \
LABEL(L_SOURCE, "来源", "Source") \
LABEL(L_QUOTA_PER_CALL, "每次额度", "Quota per call") \
LABEL(L_NO_CHANNEL, "没有启用的渠道", "No enabled channel") \
LABEL(L_MODEL_PRICES, "ModelPrice（按模型，每次调用）", "ModelPrice (per model, per call)") \
LABEL(L_MODEL, "模型", "Model") \
LABEL(L_USD_PER_CALL, "美元/次", "USD per call") \
LABEL(L_BY_GROUP, "按分组（GroupRatio）", "By group (GroupRatio)") \
LABEL(L_OPTION_BAD, "选项不是由数字组成的 JSON 对象，已忽略：", "The option is no JSON object of numbers and is ignored: ") \
LABEL(L_OPTION_ENTRY_BAD, "价格必须是不小于 0 的有限数字，此项已忽略：", "A price must be a finite number of at least 0; this entry is ignored: ") \
LABEL(L_RULES, "价格规则", "Price rules") \
LABEL(L_RULES_HELP, "价格 = 基础价格 × 各条适用规则的倍率 + 附加额度。规则在请求体 JSON 的字段等于给定值时适用（字段为以 . 分隔的路径）；字段留空的规则适用于该服务（和模型）的每个请求；同一字段上，指定模型的规则优先于任意模型的规则。", "Price = base x the multiplier of each rule that applies + its surcharge. A rule applies where the request body's JSON field has the value given (a dotted path); one without a field applies to every request of its service (and model); for one field, rules naming the model win over those for any model.") \
LABEL(L_ADD_RULE, "添加规则", "Add rule") \
LABEL(L_FIELD, "字段", "Field") \
LABEL(L_VALUE, "值", "Value") \
LABEL(L_MULTIPLIER, "倍率", "Multiplier") \
LABEL(L_SURCHARGE, "附加额度", "Surcharge") \
LABEL(L_NOTE, "说明", "Note") \
LABEL(L_ANY_MODEL, "任意", "any") \
LABEL(L_EVERY_REQUEST, "每个请求", "every request") \
LABEL(L_RULE_MODEL_HELP, "留空表示任意模型", "Empty: any model") \
LABEL(L_RULE_FIELD_HELP, "留空表示每个请求；如 duration、input.mode", "Empty: every request; e.g. duration, input.mode") \
LABEL(L_MULT_HELP, "0 到 1000，最多 4 位小数；留空为 1", "0 to 1000, at most 4 decimals; empty: 1") \
LABEL(L_SURCHARGE_HELP, "额度（整数）；留空为 0", "Quota (a whole number); empty: 0") \
LABEL(L_TASK_ID, "任务 ID", "Task ID") \
LABEL(L_TASK_STATE, "任务状态", "State") \
LABEL(L_ST_SUBMITTED, "已提交", "submitted") \
LABEL(L_ST_RUNNING, "进行中", "running") \
LABEL(L_ST_SUCCEEDED, "成功", "succeeded") \
LABEL(L_ST_FAILED, "失败", "failed") \
LABEL(L_ST_TIMEOUT, "超时", "timeout") \
LABEL(L_ST_REFUNDED, "已退款", "refunded") \
LABEL(L_CREATED, "创建时间", "Created") \
LABEL(L_CHARGED, "扣除额度", "Charged quota") \
LABEL(L_REFUNDED_QUOTA, "退还额度", "Refunded quota") \
LABEL(L_REASON, "原因", "Reason") \
LABEL(L_UPDATED, "更新 / 完成", "Updated / finished") \
LABEL(L_USER_FILTER, "用户（名称或 ID）", "User (name or id)") \
LABEL(L_TOKEN_FILTER, "令牌（名称或 ID）", "Token (name or id)") \
LABEL(L_CREATED_FROM, "创建日期从", "Created from") \
LABEL(L_CREATED_TO, "创建日期至", "Created to") \
LABEL(L_TYPE_REFUND, "退款", "Refund") \
LABEL(L_REFUNDS_24H, "24 小时退款次数", "Refunds, 24 h") \
LABEL(L_REFUND_QUOTA_24H, "24 小时退还额度", "Quota refunded, 24 h") \
LABEL(L_TASKS_BY_STATE, "任务（按状态）", "Tasks by state")

#define LABEL(id, zh, en) id,
enum label { LABELS L__MAX };
#undef LABEL

#endif
