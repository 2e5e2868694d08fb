/** The image view's "top units": the units of a layer that fire most for this image (Model.topUnits), each with its projection. */
import { query } from '../api';
import { Async, fmt, Pic, useAsync } from '../components';
import { Route } from '../route';

interface TopUnit {
  filter: { index: number };
  value: number;
  position: { x: number; y: number };
  projection: { crop: string };
}

export function TopUnits({
  model,
  layer,
  imageId,
  onUnit,
}: {
  model: string;
  layer: string;
  imageId: string;
  onUnit: (u: NonNullable<Route['unit']>) => void;
}) {
  const state = useAsync(
    (signal) =>
      query<{ model: { topUnits: TopUnit[] } }>(
        `query TopUnits($model: String!, $layer: String!, $id: ID!) { model(name: $model) { topUnits(image: { id: $id }, layer: $layer, first: 8) {
          filter { index } value position { x y } projection { crop: imageUrl(crop: true) } } } }`,
        { model, layer, id: imageId },
        signal,
      ).then((d) => d.model.topUnits),
    [model, layer, imageId],
  );
  return (
    <section className="top-units">
      <h2>Top units of {layer}</h2>
      <p className="muted">The channels whose maximum on this image is largest, with the projection of that maximum. Click one to open it below.</p>
      <Async state={state} what="top units">
        {(units) => (
          <div className="strip">
            {units.map((u) => (
              <button
                type="button"
                key={u.filter.index}
                className="cell top-unit"
                onClick={() => onUnit({ channel: u.filter.index, x: u.position.x, y: u.position.y })}
                title={`channel ${u.filter.index} at (${u.position.x}, ${u.position.y})`}
              >
                <Pic src={u.projection.crop} alt={`projection of channel ${u.filter.index}`} />
                <span className="cell-caption">
                  channel <b>{u.filter.index}</b> · {fmt(u.value)}
                </span>
              </button>
            ))}
          </div>
        )}
      </Async>
    </section>
  );
}
