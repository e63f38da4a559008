-- Run by tests/e2e/test_neovim.py in `nvim --headless`: the language server attached the
-- way Neovim 0.7 attaches one (vim.lsp.start_client, then vim.lsp.buf_attach_client), a
-- sentence with a known problem typed key by key at the end of the first line, and what
-- Neovim's diagnostics then say written as JSON to $AMPLIFY_NVIM_OUT. Then the writer's
-- say through Neovim's own code-action machinery (vim.lsp.buf.code_action, the choice
-- made where a writer makes it, vim.ui.select): each action named by $AMPLIFY_ACTIONS
-- (JSON: [{at, title}]), and the diagnostics after it.
local out = vim.env.AMPLIFY_NVIM_OUT
local result = { diagnostics = {}, actions = {} }

local function finish()
  vim.fn.writefile({ vim.fn.json_encode(result) }, out)
  vim.cmd("qa!")
end

local client_id = vim.lsp.start_client({
  name = "amplify",
  cmd = vim.fn.json_decode(vim.env.AMPLIFY_LSP_CMD),
  root_dir = vim.fn.getcwd(),
  -- Each keystroke is its own didChange, as with a writer typing.
  flags = { debounce_text_changes = 0 },
  -- The editor's settings, told as Neovim's documentation says to: at on_init.
  settings = vim.fn.json_decode(vim.env.AMPLIFY_SETTINGS),
  on_init = function(client)
    client.notify("workspace/didChangeConfiguration", { settings = client.config.settings })
  end,
})
if not client_id then
  result.error = "vim.lsp.start_client failed"
  return finish()
end
vim.lsp.buf_attach_client(0, client_id)
local started = vim.wait(20000, function()
  local client = vim.lsp.get_client_by_id(client_id)
  return client ~= nil and client.initialized
end, 20)
if not started then
  result.error = "the server did not initialize"
  return finish()
end
-- The server opens the file on the service; give it the moment that takes.
vim.wait(500)

local sentence = vim.env.AMPLIFY_SENTENCE
local line = vim.api.nvim_buf_get_lines(0, 0, 1, false)[1]
local col = #line
local last_key
for i = 1, vim.fn.strchars(sentence) do
  local char = vim.fn.strcharpart(sentence, i - 1, 1)
  vim.api.nvim_buf_set_text(0, 0, col, 0, col, { char })
  col = col + #char
  last_key = vim.loop.hrtime()
  vim.wait(15)
end

local want = tonumber(vim.env.AMPLIFY_WANT)
result.appeared = vim.wait(30000, function()
  return #vim.diagnostic.get(0) >= want
end, 5)
result.ms = (vim.loop.hrtime() - last_key) / 1e6
result.line = vim.api.nvim_buf_get_lines(0, 0, 1, false)[1]

local function diagnostics_now()
  local found = {}
  for _, d in ipairs(vim.diagnostic.get(0)) do
    table.insert(found, {
      lnum = d.lnum, col = d.col, end_lnum = d.end_lnum, end_col = d.end_col,
      message = d.message, source = d.source, code = d.code,
    })
  end
  return found
end
result.diagnostics = diagnostics_now()
if not result.appeared then
  return finish()
end

-- The writer picks an action from the menu by its title; Neovim applies it (here: the
-- server's command, workspace/executeCommand).
local wanted
vim.ui.select = function(items, opts, on_choice)
  local chosen
  wanted.offered = {}
  for _, item in ipairs(items) do
    local title = opts.format_item(item)
    table.insert(wanted.offered, title)
    if title == wanted.title then
      chosen = item
    end
  end
  on_choice(chosen)
end

for _, step in ipairs(vim.fn.json_decode(vim.env.AMPLIFY_ACTIONS)) do
  wanted = { title = step.title, at = step.at }
  local before = #vim.diagnostic.get(0)
  local line_now = vim.api.nvim_buf_get_lines(0, 0, 1, false)[1]
  local col_at = string.find(line_now, step.at, 1, true)
  vim.api.nvim_win_set_cursor(0, { 1, col_at - 1 })
  vim.lsp.buf.code_action()
  -- Gone when the service retracts it: one diagnostic fewer.
  wanted.went = vim.wait(15000, function()
    return #vim.diagnostic.get(0) < before
  end, 10)
  wanted.diagnostics = diagnostics_now()
  table.insert(result.actions, wanted)
  if not wanted.went then
    break
  end
end
finish()
