/* The pipeline board: drag a card onto another stage's column. The card moves at once
   (optimistic), and its own stage form is submitted through htmx with the version the
   board was drawn with; the server answers with the board as it now is - the card in its
   new column, or back where it was with a banner when someone changed it meanwhile.
   Without scripts the form on each card does the same. Loaded as a file: no inline script. */
(function () {
  "use strict";

  var dragged = null;

  function columnOf(el) {
    while (el && !(el.classList && el.classList.contains("column"))) {
      el = el.parentNode;
    }
    return el;
  }

  function onDragStart(event) {
    var card = event.target.closest ? event.target.closest(".deal[draggable=true]") : null;
    if (!card) {
      return;
    }
    dragged = card;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-id"));
  }

  function onDragOver(event) {
    var column = columnOf(event.target);
    if (!dragged || !column) {
      return;
    }
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    column.classList.add("drop-target");
  }

  function onDragLeave(event) {
    var column = columnOf(event.target);
    if (column && !column.contains(event.relatedTarget)) {
      column.classList.remove("drop-target");
    }
  }

  function onDrop(event) {
    var column = columnOf(event.target);
    if (!dragged || !column) {
      return;
    }
    event.preventDefault();
    column.classList.remove("drop-target");
    var card = dragged;
    dragged = null;
    var stage = column.getAttribute("data-stage");
    var form = card.querySelector("form.move");
    if (!form || columnOf(card) === column) {
      return;
    }
    var select = form.querySelector("select[name=stage]");
    var known = Array.prototype.some.call(select.options, function (o) { return o.value === stage; });
    if (!known) {
      // Lost needs a reason: the server explains, the card stays where it was.
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "stage";
      input.value = stage;
      select.disabled = true;
      form.appendChild(input);
    } else {
      select.value = stage;
      column.appendChild(card);
    }
    card.classList.add("pending");
    form.requestSubmit();
  }

  document.addEventListener("dragstart", onDragStart);
  document.addEventListener("dragover", onDragOver);
  document.addEventListener("dragleave", onDragLeave);
  document.addEventListener("drop", onDrop);
})();
