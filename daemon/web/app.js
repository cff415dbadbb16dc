// SPDX-License-Identifier: MIT
// vmscoped's page: the host's VMs, a VM's figures over the last hour and its
// processes, and the live event stream, all from the control API. Whatever
// comes from a guest (process names, command lines, event fields) is set as
// text, never as markup: a guest may name a process "<script>...".
"use strict";

const MAX_EVENTS = 100;
const token = new URLSearchParams(location.hash.slice(1)).get("token") ||
	      sessionStorage.getItem("vmscoped-token");
if (token)
	sessionStorage.setItem("vmscoped-token", token);

function selected()
{
	return new URLSearchParams(location.hash.slice(1)).get("vm");
}

async function api(path)
{
	const headers = token ? { Authorization : "Bearer " + token } : {};
	const r = await fetch(path, { headers });
	if (!r.ok) {
		let why = "HTTP " + r.status;
		try {
			why = (await r.json()).error || why;
		} catch (e) { /* not JSON */
		}
		throw new Error(why);
	}
	return r.json();
}

function cell(row, text, cls)
{
	const td = row.insertCell();
	td.textContent = text === undefined || text === null ? "" : String(text);
	if (cls)
		td.className = cls;
	return td;
}

function capCell(row, cap)
{
	const td = cell(row, cap ? cap.state + (cap.events ? " (" + cap.events + ")" : "") : "");
	if (cap) {
		td.className = cap.state;
		td.title = cap.reason || "";
	}
}

function renderVms(vms)
{
	const body = document.querySelector("#vms tbody");
	body.replaceChildren();
	for (const v of vms) {
		const row = body.insertRow();
		row.dataset.vm = v.name;
		row.className = (v.state === "down" ? "down" : "") +
				(v.name === selected() ? " selected" : "");
		const a = document.createElement("a");
		a.href = "#vm=" + encodeURIComponent(v.name);
		a.textContent = v.name;
		row.insertCell().appendChild(a);
		cell(row, v.state);
		cell(row, v.source);
		cell(row, v.samples, "num");
		const caps = v.capabilities || {};
		capCell(row, caps.views);
		capCell(row, caps.trace);
		capCell(row, caps.fswatch);
		cell(row, v.events_dropped, "num");
		cell(row, v.reason);
	}
}

const plots = {};

function plot(id, times, values, label)
{
	const data = times.map((t, i) => [new Date(t * 1000), values[i]]);
	if (!data.length)
		data.push([ new Date(), 0 ]);
	if (plots[id]) {
		plots[id].updateOptions({ file : data });
		return;
	}
	plots[id] = new Dygraph(document.getElementById(id), data, {
		labels : [ "time", label ],
		legend : "follow",
		drawPoints : false,
		includeZero : true,
		strokeWidth : 1.5
	});
}

function renderProcs(view)
{
	const body = document.querySelector("#procs tbody");
	body.replaceChildren();
	for (const p of view.items) {
		if (p.kernel_thread)
			continue;
		const row = body.insertRow();
		row.dataset.pid = p.pid;
		cell(row, p.pid, "num");
		cell(row, p.ppid, "num");
		cell(row, p.uid, "num");
		cell(row, p.state);
		cell(row, p.comm);
		cell(row, p.cmdline);
	}
	document.getElementById("procs-note").textContent =
		view.truncated ? "(partial: " + view.warning + ")" : "";
}

async function refreshDetail()
{
	const name = selected();
	const detail = document.getElementById("detail");
	detail.hidden = !name;
	if (!name)
		return;
	document.getElementById("vm-name").textContent = name;
	const enc = encodeURIComponent(name);
	const h = await api("/api/v1/vms/" + enc + "/history");
	plot("plot-cpu", h.time, h.cpu_percent, "CPU %");
	plot("plot-rss", h.time, h.rss_bytes.map(b => b / 1048576), "RSS MiB");
	renderProcs(await api("/api/v1/vms/" + enc + "/ps"));
}

async function refresh()
{
	const status = document.getElementById("status");
	try {
		renderVms(await api("/api/v1/vms"));
		await refreshDetail();
		status.textContent = "updated " + new Date().toLocaleTimeString();
		document.body.dataset.ready = "1";
	} catch (e) {
		status.textContent = "error: " + e.message;
	}
}

function showEvent(id, type, json)
{
	const list = document.getElementById("events");
	const li = document.createElement("li");
	let ev;
	try {
		ev = JSON.parse(json);
	} catch (e) {
		return;
	}
	li.dataset.id = id;
	li.dataset.type = type;
	li.dataset.vm = ev.vm;
	const rest = Object.assign({}, ev);
	for (const k of ["time", "time_ns", "vm", "source", "type"])
		delete rest[k];
	const head = document.createElement("b");
	head.textContent = ev.time + " " + ev.vm + " " + type + " ";
	const body = document.createElement("code");
	body.textContent = JSON.stringify(rest);
	li.append(head, body);
	list.prepend(li);
	while (list.children.length > MAX_EVENTS)
		list.lastChild.remove();
}

// The stream through fetch, not EventSource: fetch can carry the bearer token.
async function stream()
{
	for (;;) {
		try {
			const headers = token ? { Authorization : "Bearer " + token } : {};
			const r = await fetch("/api/v1/events?from=0", { headers });
			const reader = r.body.getReader();
			const text = new TextDecoder();
			let buf = "";
			for (;;) {
				const { value, done } = await reader.read();
				if (done)
					break;
				buf += text.decode(value, { stream : true });
				let end;
				while ((end = buf.indexOf("\n\n")) >= 0) {
					const block = buf.slice(0, end);
					buf = buf.slice(end + 2);
					const f = {};
					for (const line of block.split("\n")) {
						const i = line.indexOf(": ");
						if (i > 0 && line[0] !== ":")
							f[line.slice(0, i)] = line.slice(i + 2);
					}
					if (f.data)
						showEvent(f.id, f.event, f.data);
				}
			}
		} catch (e) {
			/* the daemon went away: try again */
		}
		await new Promise(ok => setTimeout(ok, 2000));
	}
}

window.addEventListener("hashchange", refresh);
refresh();
setInterval(refresh, 5000);
stream();
