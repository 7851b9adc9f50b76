// The operator's whole path in a real browser (Debian's chromium, headless,
// driven by playwright-core): log in, give the admin some quota, add a
// type-55 channel by typing into the form, add a token, send a request
// with that token through the relay, look at the logs, filter the tasks,
// add a price rule, and look at the dashboard.
// Screenshots go to OUT_DIR. Prints one JSON line of what it saw; the
// Python side (test_browser.py) checks the database and the stub.
'use strict';

const { chromium } = require('playwright-core');

const BASE = process.env.BASE_URL;           // http://127.0.0.1:PORT
const STUB = process.env.STUB_URL;           // the channel's Base URL
const OUT = process.env.OUT_DIR;
const USER = process.env.ADMIN_USER;
const PASS = process.env.ADMIN_PASS;

const seen = { steps: [] };

function step(name) {
  seen.steps.push(name);
  process.stderr.write('# browser: ' + name + '\n');
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const ctx = await browser.newContext({
      viewport: { width: 1360, height: 900 },
      locale: 'zh-CN',
      extraHTTPHeaders: { 'Accept-Language': 'zh-CN,zh;q=0.9' },
    });
    const page = await ctx.newPage();
    const cspErrors = [];
    page.on('console', (m) => {
      if (m.type() === 'error') cspErrors.push(m.text());
    });

    step('login');
    await page.goto(BASE + '/admin/');
    await page.getByLabel('用户名').fill(USER);
    await page.getByLabel('密码').fill(PASS);
    await page.getByRole('button', { name: '登录' }).click();
    await page.waitForURL(BASE + '/admin/');
    seen.dashboard_title = await page.locator('h1').innerText();

    step('quota for the admin user');
    await page.getByRole('link', { name: '用户', exact: true }).click();
    await page.locator('tr', { hasText: USER }).getByRole('link', { name: '编辑' }).click();
    await page.getByLabel('额度').fill('100000000');
    await page.getByRole('button', { name: '保存' }).click();
    await page.waitForURL(/\/admin\/users\?ok=1$/);

    step('add channel');
    await page.getByRole('link', { name: '渠道', exact: true }).click();
    await page.getByRole('link', { name: '添加渠道' }).click();
    await page.getByLabel('渠道名称').fill('旧网关-统一');
    seen.type_option = await page.getByLabel('渠道类型').locator('option:checked').innerText();
    await page.getByLabel('Base URL').pressSequentially(STUB + '/');
    await page.getByLabel('密钥').pressSequentially('sk-browser-channel-key');
    await page.getByLabel('状态').selectOption('1');
    await page.getByLabel('优先级').fill('0');
    await page.getByLabel('模型映射').fill('');
    await page.getByLabel('模型映射').pressSequentially('kling\nrunway\npika');
    await page.getByLabel('设置').fill('{"PassthroughQuota": 1500}');
    await page.screenshot({ path: OUT + '/channel-form.png', fullPage: true });
    await page.getByRole('button', { name: '保存' }).click();
    await page.waitForURL(/\/admin\/channels\?ok=4$/);
    seen.channel_notice = await page.locator('.msg.ok').innerText();
    seen.channel_row = await page.locator('tbody tr', { hasText: '旧网关-统一' }).innerText();
    await page.screenshot({ path: OUT + '/channels.png', fullPage: true });

    step('channel test button');
    await page.locator('tr', { hasText: '旧网关-统一' }).getByRole('button', { name: '测试' }).click();
    seen.channel_test = await page.locator('.msg').first().innerText();

    step('add token');
    await page.getByRole('link', { name: '令牌', exact: true }).click();
    await page.getByRole('link', { name: '添加令牌' }).click();
    await page.getByLabel('名称').fill('browser-token');
    await page.getByLabel('剩余额度').fill('50000');
    await page.getByLabel('模型限制').pressSequentially('kling');
    await page.getByLabel('每分钟请求数').fill('600');
    await page.getByRole('button', { name: '保存' }).click();
    const key = (await page.locator('#new-key').innerText()).trim();
    seen.token_key = key;
    await page.screenshot({ path: OUT + '/token-created.png', fullPage: true });
    await page.getByRole('link', { name: '令牌', exact: true }).first().click();
    seen.token_list = await page.locator('tbody').innerText();

    step('request through the relay');
    const resp = await fetch(BASE + '/kling/v1/videos/text2video', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'kling-v1-6', prompt: 'browser test' }),
    });
    seen.relay_status = resp.status;
    seen.relay_body = (await resp.text()).slice(0, 2000);

    step('logs page');
    await page.getByRole('link', { name: '使用日志' }).click();
    await page.getByLabel('令牌名称').fill('browser-token');
    await page.getByRole('button', { name: '筛选' }).click();
    await page.waitForURL(/token=browser-token/);
    seen.logs_rows = await page.locator('#total-rows').innerText();
    seen.logs_table = await page.locator('tbody').innerText();
    await page.screenshot({ path: OUT + '/logs.png', fullPage: true });

    step('tasks page');
    await page.getByRole('link', { name: '任务', exact: true }).click();
    seen.tasks_all = await page.locator('tr[data-task]').evaluateAll(
      (rows) => rows.map((r) => r.getAttribute('data-task')));
    await page.getByLabel('任务状态').selectOption('refunded');
    await page.getByRole('button', { name: '筛选' }).click();
    await page.waitForURL(/state=refunded/);
    seen.tasks_refunded = await page.locator('tr[data-task]').evaluateAll(
      (rows) => rows.map((r) => r.getAttribute('data-task')));
    seen.tasks_refunded_row = await page.locator('#tasks tbody').innerText();
    await page.screenshot({ path: OUT + '/tasks.png', fullPage: true });

    step('prices page');
    await page.getByRole('link', { name: '价格', exact: true }).click();
    seen.base_prices = await page.locator('#base-prices tbody').innerText();
    // the form's inputs by name: a label's text holds its help and value too
    const rule = page.locator('#add-rule');
    await rule.locator('select[name=service]').selectOption('kling');
    await rule.locator('input[name=field]').fill('duration');
    await rule.locator('input[name=value]').fill('10');
    await rule.locator('input[name=multiplier]').fill('abc');
    await page.getByRole('button', { name: '添加规则' }).click();
    seen.rule_error = await page.locator('.msg.err').innerText();
    seen.rule_kept = await rule.locator('input[name=value]').inputValue();
    await rule.locator('input[name=multiplier]').fill('2');
    await rule.locator('input[name=surcharge]').fill('100');
    await rule.locator('input[name=note]').fill('browser rule');
    await page.getByRole('button', { name: '添加规则' }).click();
    await page.waitForURL(/\/admin\/prices\?ok=1$/);
    seen.rules_table = await page.locator('#rules tbody').innerText();
    await page.screenshot({ path: OUT + '/prices.png', fullPage: true });

    step('dashboard');
    await page.getByRole('link', { name: '仪表盘' }).click();
    seen.svg_bars = await page.locator('#chart-requests rect').count();
    await page.screenshot({ path: OUT + '/dashboard.png', fullPage: true });

    step('english');
    const en = await browser.newContext({ locale: 'en-US',
      extraHTTPHeaders: { 'Accept-Language': 'en-US,en;q=0.9' } });
    const p2 = await en.newPage();
    await p2.goto(BASE + '/admin/login');
    seen.english_button = await p2.getByRole('button').first().innerText();
    await en.close();

    step('logout');
    await page.getByRole('button', { name: '退出登录' }).click();
    await page.waitForURL(BASE + '/admin/login');
    await page.goto(BASE + '/admin/channels');
    seen.after_logout_url = page.url();
    seen.console_errors = cspErrors;
  } finally {
    await browser.close();
  }
}

main().then(() => {
  process.stdout.write(JSON.stringify(seen) + '\n');
}, (e) => {
  seen.error = String(e && e.stack || e);
  process.stdout.write(JSON.stringify(seen) + '\n');
  process.exitCode = 1;
});
