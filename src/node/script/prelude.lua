-- Sandbox set up once per Lua VM, run with the real globals table and the debug library.
-- Returns the globals table scripts see (a read-only proxy), the runner, and the table of
-- per-run hooks the Rust side fills in.
local G = _G
local dbg = debug
local error, type, tostring, rawget, rawset = error, type, tostring, rawget, rawset
local setmetatable, getmetatable, xpcall, select, unpack = setmetatable, getmetatable, xpcall, select, unpack
local protected = setmetatable({}, {__mode = 'k'})

local function ro()
  error('Attempt to modify a readonly table', 2)
end

-- A read-only view of `t`: reads go to `t`, writes fail as Redis's read-only tables do.
local function readonly(t)
  local p = {}
  local meta = {}
  protected[meta] = true
  setmetatable(meta, {__index = function() return nil end, __newindex = ro})
  setmetatable(p, {__index = t, __newindex = ro, __metatable = meta})
  protected[p] = true
  return p
end

local hooks = {}
hooks.register = function()
  return {err = 'ERR redis.register_function can only be called on FUNCTION LOAD command'}, true
end

local redis = G.redis
-- The functions that may raise an error table: the Rust side wraps each in a C function
-- that raises what they return with `raise` set (a C function keeps the caller's frame on a
-- tail call, so errors point at the script's line as in Redis). redis.call and redis.pcall
-- are C functions of their own (rawcall.rs), set by the Rust side.
local rlog, rsha = redis.log, redis.sha1hex
local inner = {
  setresp = function(...) return hooks.setresp(...) end,
  set_repl = function(...) return hooks.set_repl(...) end,
  register = function(...) return hooks.register(...) end,
  log = rlog,
  sha1hex = rsha,
}
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end

-- An error raised by a Rust library function arrives as mlua's error object: its message,
-- at the calling line, as luaL_error would have put it.
local gsub, find, sub = string.gsub, string.find, string.sub
local function clean(err, i)
  local s = tostring(err)
  s = gsub(s, '^runtime error: ', '')
  local cut = find(s, '\nstack traceback:', 1, true)
  if cut then s = sub(s, 1, cut - 1) end
  if i and i.currentline and i.currentline > 0 then
    s = i.short_src .. ':' .. i.currentline .. ': ' .. s
  end
  return s
end

-- Redis 7's pcall hands back the message of an error table rather than the table.
local rawpcall = pcall
G.pcall = function(...)
  local r = {rawpcall(...)}
  -- A killed script must stop even if it catches errors.
  if not r[1] and hooks.killed then error(r[2], 0) end
  if not r[1] and type(r[2]) == 'table' and type(rawget(r[2], 'err')) == 'string' then
    return false, rawget(r[2], 'err')
  end
  if not r[1] and type(r[2]) == 'userdata' then
    return false, clean(r[2], dbg.getinfo(2, 'Sl'))
  end
  return unpack(r, 1, table.maxn(r))
end
G.rawset = function(t, k, v)
  if protected[t] then error('Attempt to modify a readonly table', 0) end
  return rawset(t, k, v)
end
G.setmetatable = function(t, m)
  if protected[t] then error('Attempt to modify a readonly table', 0) end
  return setmetatable(t, m)
end
-- Compiled chunks are refused, as Redis's Lua refuses them (bytecode can break the VM).
local rawloadstring, rawload, concat = loadstring, load, table.concat
G.loadstring = function(s, name)
  if type(s) == 'string' and s:byte(1) == 27 then
    return nil, 'binary chunks are not allowed'
  end
  return rawloadstring(s, name)
end
G.load = function(f, name)
  local parts = {}
  while true do
    local piece = f()
    if piece == nil or piece == '' then break end
    parts[#parts + 1] = piece
  end
  return G.loadstring(concat(parts), name)
end
G.print = nil
G.dofile = nil
G.loadfile = nil
G.debug = nil
G.module = nil
G.require = nil
G.package = nil

for _, name in ipairs({'redis', 'string', 'math', 'table', 'coroutine', 'cjson', 'bit', 'cmsgpack', 'struct'}) do
  if rawget(G, name) ~= nil then
    rawset(G, name, readonly(rawget(G, name)))
  end
end

local function handler(err)
  local level = 2
  local i = dbg.getinfo(level, 'nSl')
  while i and (i.what == 'C' or i.source == '=sluice') do
    level = level + 1
    i = dbg.getinfo(level, 'nSl')
  end
  if type(err) == 'userdata' then
    err = clean(err, i)
  end
  if type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end

-- Runs `f(a, b)` under the error handler: returns ok, first result.
local function run(f, a, b)
  local ok, r = xpcall(function() return f(a, b) end, handler)
  return ok, r
end

-- The globals scripts see: reads of a missing name fail, writes fail.
setmetatable(G, {__index = function(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end})
local env = {}
setmetatable(env, {__index = G, __newindex = ro, __metatable = readonly({})})
protected[env] = true
rawset(G, '_G', env)

return env, run, hooks, G, readonly, inner, redis
