-- man.lua - the pandoc filter that turns a page of docs/ into a man page (docs/meson.build),
-- so that the man pages are the docs themselves and cannot drift from them.
--
-- A docs page is written for reading as Markdown: a "# title", some introduction, "##"
-- sections, option tables. A man page wants NAME, SYNOPSIS and DESCRIPTION first, .SH for
-- sections, and tables narrow enough for a terminal. So:
--   * the "# title" is dropped (.TH carries the title) and every other heading moves up a
--     level; the names of top-level sections are upper-cased, code in them left alone;
--   * a page without a NAME section gets one, "NAME - DESCRIPTION" from the metadata name
--     and description (-M name=... -M description=...);
--   * a page without a SYNOPSIS section whose introduction opens with a code block gets that
--     block as its SYNOPSIS; the rest of the introduction becomes the DESCRIPTION;
--   * a two-column table (option | meaning) becomes a list of tagged paragraphs (.TP), the
--     form man pages give options: tbl's columns at 80 characters leave a few words a line.

local stringify = pandoc.utils.stringify

local function upper_section(header)
  return header:walk({
    Str = function(s) return pandoc.Str(pandoc.text.upper(s.text)) end,
  })
end

local function definition_list(tbl)
  local simple = pandoc.utils.to_simple_table(tbl)
  if #simple.aligns ~= 2 then
    return nil
  end
  local items = {}
  for _, row in ipairs(simple.rows) do
    table.insert(items, {pandoc.utils.blocks_to_inlines(row[1]), {row[2]}})
  end
  return pandoc.DefinitionList(items)
end

function Pandoc(doc)
  local intro, body, has = {}, {}, {}
  local title, in_sections = nil, false
  for _, block in ipairs(doc.blocks) do
    if block.t == 'Header' and block.level == 1 and not title and not in_sections then
      title = stringify(block)
    elseif block.t == 'Header' then
      in_sections = true
      block.level = math.max(1, block.level - 1)
      if block.level == 1 then
        block = upper_section(block)
        has[stringify(block)] = true
      end
      table.insert(body, block)
    elseif block.t == 'Table' then
      table.insert(in_sections and body or intro, definition_list(block) or block)
    else
      table.insert(in_sections and body or intro, block)
    end
  end

  local out = {}
  if not has.NAME then
    local name, what = stringify(doc.meta.name or ''), stringify(doc.meta.description or '')
    if name == '' or what == '' then
      error('man.lua: the page has no NAME section: give -M name=... -M description=...')
    end
    table.insert(out, pandoc.Header(1, 'NAME'))
    table.insert(out, pandoc.Para(name .. ' - ' .. what))
  end
  if not has.SYNOPSIS and intro[1] and intro[1].t == 'CodeBlock' then
    table.insert(out, pandoc.Header(1, 'SYNOPSIS'))
    table.insert(out, table.remove(intro, 1))
  end
  if #intro > 0 then
    if has.DESCRIPTION then
      error('man.lua: text before the first section of a page that has its own DESCRIPTION')
    end
    table.insert(out, pandoc.Header(1, 'DESCRIPTION'))
    for _, block in ipairs(intro) do table.insert(out, block) end
  end
  for _, block in ipairs(body) do table.insert(out, block) end
  return pandoc.Pandoc(out, doc.meta)
end
