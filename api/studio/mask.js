// A brush over the first image. The canvas has the image's own pixel size; what is painted is
// exported as a PNG of that size whose painted area is transparent (the part to edit).

export class MaskPainter {
  constructor(canvas, brush, onChange) {
    this.canvas = canvas;
    this.brush = brush;
    this.onChange = onChange;
    this.ctx = canvas.getContext("2d");
    this.painted = false;
    this.last = null;
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    canvas.addEventListener("pointercancel", (e) => this.up(e));
  }

  reset(width, height) {
    this.canvas.width = width;
    this.canvas.height = height;
    this.clear(false);
  }

  clear(notify = true) {
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.painted = false;
    if (notify) this.onChange();
  }

  point(e) {
    const box = this.canvas.getBoundingClientRect();
    const scale = this.canvas.width / box.width;
    return { x: (e.clientX - box.left) * scale, y: (e.clientY - box.top) * scale, scale };
  }

  down(e) {
    if (e.button !== 0) return;
    e.preventDefault();
    this.canvas.setPointerCapture(e.pointerId);
    this.last = this.point(e);
    this.stroke(this.last, this.last);
  }

  move(e) {
    if (this.last === null) return;
    e.preventDefault();
    const here = this.point(e);
    this.stroke(this.last, here);
    this.last = here;
  }

  up(e) {
    if (this.last === null) return;
    this.last = null;
    if (this.canvas.hasPointerCapture(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
    this.onChange();
  }

  stroke(from, to) {
    const ctx = this.ctx;
    ctx.strokeStyle = "rgb(255, 40, 90)";
    ctx.fillStyle = "rgb(255, 40, 90)";
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = Number(this.brush.value) * to.scale;
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x + 0.01, to.y);
    ctx.stroke();
    this.painted = true;
  }

  /** The mask as a PNG blob: opaque where untouched, transparent where painted. */
  toBlob() {
    const out = document.createElement("canvas");
    out.width = this.canvas.width;
    out.height = this.canvas.height;
    const ctx = out.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.globalCompositeOperation = "destination-out";
    ctx.drawImage(this.canvas, 0, 0);
    return new Promise((resolve) => out.toBlob(resolve, "image/png"));
  }
}
